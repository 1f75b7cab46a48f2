//! The store's key filter (`ledger/_keyfilter.py` is its pure-Python twin, with the reasons).
//! The Bloom filter lives in `partledger_core::keyfilter`; keys are hashed with Python's own
//! `hash`, as the twin does, so both set the same bits for the same keys.

use partledger_core::keyfilter::KeyFilter as Bloom;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyList;

/// Hashes are gathered in chunks of this many before they are inserted: hashing may run Python
/// code (an iterator that releases the GIL, a `__hash__`), which must never happen while the
/// filter is borrowed mutably, and a store's opening scan must not buffer millions of them.
const CHUNK: usize = 4096;

#[pyclass(module = "ledger._native", name = "KeyFilter")]
pub struct KeyFilter {
    bloom: Bloom,
}

fn hash_of(key: &Bound<'_, PyAny>) -> PyResult<u64> {
    Ok(key.hash()? as u64)
}

fn insert_all(slf: &Bound<'_, KeyFilter>, hashes: &mut Vec<u64>) {
    let mut me = slf.borrow_mut();
    for &h in hashes.iter() {
        me.bloom.insert(h);
    }
    hashes.clear();
}

impl KeyFilter {
    /// Whether the filter may hold `key` (false: it was never added): `__contains__`, for
    /// native callers too. The key is hashed before the filter is borrowed (see `CHUNK`).
    pub(crate) fn may_hold(slf: &Bound<'_, Self>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let h = hash_of(key)?;
        Ok(slf.borrow().bloom.contains(h))
    }
}

#[pymethods]
impl KeyFilter {
    #[new]
    #[pyo3(signature = (capacity = 1 << 20))]
    fn new(capacity: i64) -> PyResult<Self> {
        if !(0..=1 << 40).contains(&capacity) {
            return Err(PyValueError::new_err(
                "capacity must be between 0 and 2**40",
            ));
        }
        Ok(KeyFilter {
            bloom: Bloom::new(capacity as u64),
        })
    }

    fn add(slf: &Bound<'_, Self>, key: &Bound<'_, PyAny>) -> PyResult<()> {
        let h = hash_of(key)?;
        slf.borrow_mut().bloom.insert(h);
        Ok(())
    }

    /// Add every key of `keys` (any iterable of hashable keys; a list is read directly).
    fn update(slf: &Bound<'_, Self>, keys: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut hashes: Vec<u64> = Vec::with_capacity(CHUNK);
        if let Ok(list) = keys.downcast::<PyList>() {
            for item in list.iter() {
                hashes.push(hash_of(&item)?);
                if hashes.len() == CHUNK {
                    insert_all(slf, &mut hashes);
                }
            }
        } else {
            for item in keys.try_iter()? {
                hashes.push(hash_of(&item?)?);
                if hashes.len() == CHUNK {
                    insert_all(slf, &mut hashes);
                }
            }
        }
        insert_all(slf, &mut hashes);
        Ok(())
    }

    /// Positions in `keys` of the keys the filter may hold, in order: one call for a block's
    /// thousands of keys, most of them new, instead of a `key in filter` each.
    fn held(slf: &Bound<'_, Self>, keys: &Bound<'_, PyList>) -> PyResult<Vec<usize>> {
        let mut hashes: Vec<u64> = Vec::with_capacity(keys.len());
        for item in keys.iter() {
            hashes.push(hash_of(&item)?);
        }
        let me = slf.borrow();
        Ok(hashes
            .iter()
            .enumerate()
            .filter(|&(_, &h)| me.bloom.contains(h))
            .map(|(i, _)| i)
            .collect())
    }

    fn __contains__(slf: &Bound<'_, Self>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        Self::may_hold(slf, key)
    }

    #[getter]
    fn count(&self) -> u64 {
        self.bloom.count()
    }

    #[getter]
    fn nbytes(&self) -> u64 {
        self.bloom.nbytes()
    }

    #[getter]
    fn parts(&self) -> usize {
        self.bloom.parts()
    }
}
