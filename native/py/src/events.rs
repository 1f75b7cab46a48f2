//! The provenance state machine's native fast path (`partledger_core::events`, which says what
//! it handles and why declining is always safe); `ledger/provenance/_app.py` is the reference
//! and runs every block this declines.

use std::collections::HashSet;

use partledger_core::events::{self, BlockInfo, Rules, Stop};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::keyfilter::KeyFilter;

#[pyclass(frozen, module = "ledger._native", name = "EventExecutor")]
pub struct EventExecutor {
    rules: Rules,
}

#[pymethods]
impl EventExecutor {
    #[new]
    #[pyo3(signature = (*, biz_steps, dispositions, cbv_prefixes, write_roles, cap_events, index))]
    fn new(
        biz_steps: Vec<String>,
        dispositions: Vec<String>,
        cbv_prefixes: Vec<String>,
        write_roles: Vec<String>,
        cap_events: usize,
        index: bool,
    ) -> Self {
        EventExecutor {
            rules: Rules {
                biz_steps: biz_steps.into_iter().collect::<HashSet<_>>(),
                dispositions: dispositions.into_iter().collect(),
                cbv_prefixes,
                write_roles: write_roles.into_iter().collect(),
                cap_events,
                index,
            },
        }
    }

    /// The block's write set `{key: encoded value}` when every transaction (canonical bytes
    /// `txs`, ids `tx_ids`) is one this path handles and the reference would accept; None
    /// otherwise. `read(key)` answers the state before the block (bytes or None); what it
    /// raises propagates.
    ///
    /// `absent`, with `absent_prefix`: the reader's key filter (the store's, see
    /// `Store.state_filter`): a key for which `absent_prefix + key` is not in it is absent, and
    /// `read` is not called for it. Most keys a block reads are new (event ids, EPCs), and a
    /// call into Python through the store's `get` cost more than the rest of such a read.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (read, chain, height, time_ms, txs, tx_ids, absent=None, absent_prefix=None))]
    fn execute<'py>(
        &self,
        py: Python<'py>,
        read: &Bound<'py, PyAny>,
        chain: &[u8],
        height: i64,
        time_ms: i64,
        txs: Vec<Bound<'py, PyBytes>>,
        tx_ids: Vec<Bound<'py, PyBytes>>,
        absent: Option<Bound<'py, KeyFilter>>,
        absent_prefix: Option<&[u8]>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        if txs.len() != tx_ids.len() {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "txs and tx_ids differ in length",
            ));
        }
        let items: Vec<(&[u8], &[u8])> = txs
            .iter()
            .zip(&tx_ids)
            .map(|(t, i)| (t.as_bytes(), i.as_bytes()))
            .collect();
        let block = BlockInfo {
            chain,
            height,
            time_ms,
        };
        let prefix = absent_prefix.unwrap_or_default();
        let mut full_key: Vec<u8> = Vec::with_capacity(prefix.len() + 256);
        let mut reader = |key: &[u8]| -> PyResult<Option<Vec<u8>>> {
            if let Some(filter) = &absent {
                full_key.clear();
                full_key.extend_from_slice(prefix);
                full_key.extend_from_slice(key);
                if !KeyFilter::may_hold(filter, PyBytes::new(py, &full_key).as_any())? {
                    return Ok(None);
                }
            }
            let got = read.call1((PyBytes::new(py, key),))?;
            if got.is_none() {
                return Ok(None);
            }
            // anything but bytes is the reference's business: an empty record declines
            Ok(Some(
                got.downcast::<PyBytes>()
                    .map(|b| b.as_bytes().to_vec())
                    .unwrap_or_default(),
            ))
        };
        match events::execute(&self.rules, &block, &items, &mut reader) {
            Ok(writes) => {
                let out = PyDict::new(py);
                for (k, v) in writes {
                    out.set_item(PyBytes::new(py, &k), PyBytes::new(py, &v))?;
                }
                Ok(Some(out))
            }
            Err(Stop::Decline) => Ok(None),
            Err(Stop::Read(e)) => Err(e),
        }
    }
}
