//! The canonical codec's fast paths (`ledger/_codec.py` calls them; it stays the reference and
//! the fallback). The rules live in `partledger_core::codec`.

use partledger_core::codec::{self, Writer, MAX_DEPTH, MAX_DOCUMENT_BYTES};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyInt, PyList, PyString, PyTuple};

/// Above this size the check runs without the GIL (about 1 ns a byte: below, the hand-off
/// costs more than it frees).
const CHECK_RELEASE_GIL_BYTES: usize = 64 * 1024;

/// True iff `ledger._codec.decode` (without its size limit) accepts `data`.
#[pyfunction]
pub fn canonical_check(py: Python<'_>, data: &Bound<'_, PyBytes>) -> bool {
    let data = data.as_bytes();
    if data.len() < CHECK_RELEASE_GIL_BYTES {
        codec::check(data)
    } else {
        py.allow_threads(|| codec::check(data))
    }
}

/// The canonical encoding of `value` when it is made only of the exact built-in types of the
/// profile (dict with str keys, list, tuple, int within int64, str, bytes, bool, None) nested at
/// most `MAX_DEPTH` deep, and the document is at most `MAX_DOCUMENT_BYTES`; None otherwise
/// (then `ledger._codec.encode` takes its Python path, which encodes subclasses and mappings and
/// raises the proper error for the rest).
#[pyfunction]
pub fn canonical_encode<'py>(
    py: Python<'py>,
    value: &Bound<'py, PyAny>,
) -> Option<Bound<'py, PyBytes>> {
    let mut w = Writer::with_capacity(256);
    if !write(value, 0, &mut w) || w.out.len() > MAX_DOCUMENT_BYTES {
        return None;
    }
    Some(PyBytes::new(py, &w.out))
}

fn write(obj: &Bound<'_, PyAny>, depth: usize, w: &mut Writer) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    if let Ok(s) = obj.downcast_exact::<PyString>() {
        // fails for lone surrogates, which Python's encode refuses too (UnicodeEncodeError)
        return s.to_str().is_ok_and(|s| w.str(s.as_bytes()));
    }
    if let Ok(b) = obj.downcast_exact::<PyBytes>() {
        return w.bin(b.as_bytes());
    }
    if obj.is_none() {
        w.nil();
        return true;
    }
    if let Ok(b) = obj.downcast_exact::<PyBool>() {
        w.bool(b.is_true());
        return true;
    }
    if let Ok(i) = obj.downcast_exact::<PyInt>() {
        return match i.extract::<i64>() {
            Ok(v) => {
                w.int(v);
                true
            }
            Err(_) => false, // outside int64
        };
    }
    if let Ok(d) = obj.downcast_exact::<PyDict>() {
        return write_dict(d, depth, w);
    }
    if let Ok(l) = obj.downcast_exact::<PyList>() {
        // iterate by index: the list cannot change under us (we hold the GIL and run no
        // Python code), and a snapshot of its length keeps the header honest
        let n = l.len();
        if !w.array(n) {
            return false;
        }
        return (0..n).all(|i| l.get_item(i).is_ok_and(|v| write(&v, depth + 1, w)));
    }
    if let Ok(t) = obj.downcast_exact::<PyTuple>() {
        if !w.array(t.len()) {
            return false;
        }
        return t.iter_borrowed().all(|v| write(&v, depth + 1, w));
    }
    false // floats, big ints, subclasses, other types: the Python path decides
}

fn write_dict(d: &Bound<'_, PyDict>, depth: usize, w: &mut Writer) -> bool {
    let mut keys: Vec<Bound<'_, PyString>> = Vec::with_capacity(d.len());
    let mut values: Vec<Bound<'_, PyAny>> = Vec::with_capacity(d.len());
    for (k, v) in d.iter() {
        let Ok(k) = k.downcast_into_exact::<PyString>() else {
            return false;
        };
        keys.push(k);
        values.push(v);
    }
    let mut order: Vec<(&str, usize)> = Vec::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        let Ok(s) = k.to_str() else {
            return false;
        };
        order.push((s, i));
    }
    // distinct dict keys have distinct UTF-8 bytes, so the order is total
    order.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    if !w.map(order.len()) {
        return false;
    }
    order
        .iter()
        .all(|&(k, i)| w.str(k.as_bytes()) && write(&values[i], depth + 1, w))
}

/// The pairs of `writes` when it is a `dict` of exact `bytes` keys to exact `bytes` or None
/// (a write set as the executors make it); None for anything else.
#[allow(clippy::type_complexity)]
fn exact_write_set<'py>(
    writes: &Bound<'py, PyAny>,
) -> Option<Vec<(Bound<'py, PyBytes>, Option<Bound<'py, PyBytes>>)>> {
    let d = writes.downcast_exact::<PyDict>().ok()?;
    let mut owned = Vec::with_capacity(d.len());
    for (k, v) in d.iter() {
        let k = k.downcast_into_exact::<PyBytes>().ok()?;
        let v = if v.is_none() {
            None
        } else {
            Some(v.downcast_into_exact::<PyBytes>().ok()?)
        };
        owned.push((k, v));
    }
    Some(owned)
}

/// `ledger._app.next_state_root(prev_root, writes)` under `domain` when `writes` is a `dict` of
/// exact `bytes` keys to exact `bytes` or None; None otherwise (the Python definition then
/// decides, and raises what it raises).
#[pyfunction]
pub fn state_root<'py>(
    py: Python<'py>,
    domain: &[u8],
    prev_root: &[u8],
    writes: &Bound<'py, PyAny>,
) -> Option<Bound<'py, PyBytes>> {
    let owned = exact_write_set(writes)?;
    let mut pairs: Vec<(&[u8], Option<&[u8]>)> = owned
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_ref().map(|v| v.as_bytes())))
        .collect();
    let inner = codec::write_set_digest(&mut pairs)?;
    let mut outer = Vec::with_capacity(domain.len() + prev_root.len() + 32);
    outer.extend_from_slice(domain);
    outer.extend_from_slice(prev_root);
    outer.extend_from_slice(&inner);
    Some(PyBytes::new(py, &partledger_core::sha256(&outer)))
}

/// The store's LevelDB batch for a block's state `writes` (`ledger._store._put_writes`):
/// `(put keys, their values, delete keys)`, every key behind `prefix`, the puts in key order
/// (LevelDB inserts a batch one key at a time: in order each lands next to the last). None
/// unless `writes` is a `dict` of exact `bytes` keys of 1 to `max_key` bytes to exact `bytes`
/// or None (the store then names the culprit). The values are the dict's own objects.
#[pyfunction]
#[allow(clippy::type_complexity)]
pub fn state_batch<'py>(
    py: Python<'py>,
    prefix: &[u8],
    writes: &Bound<'py, PyAny>,
    max_key: usize,
) -> PyResult<Option<(Bound<'py, PyList>, Bound<'py, PyList>, Bound<'py, PyList>)>> {
    let Some(mut owned) = exact_write_set(writes) else {
        return Ok(None);
    };
    if !owned
        .iter()
        .all(|(k, _)| (1..=max_key).contains(&k.as_bytes().len()))
    {
        return Ok(None);
    }
    codec::sort_by_key_bytes(&mut owned, |(k, _)| k.as_bytes());
    let mut key = Vec::with_capacity(prefix.len() + max_key);
    let mut prefixed = |k: &[u8]| {
        key.clear();
        key.extend_from_slice(prefix);
        key.extend_from_slice(k);
        PyBytes::new(py, &key)
    };
    let (keys, values, deletes) = (PyList::empty(py), PyList::empty(py), PyList::empty(py));
    for (k, v) in &owned {
        match v {
            None => deletes.append(prefixed(k.as_bytes()))?,
            Some(v) => {
                keys.append(prefixed(k.as_bytes()))?;
                values.append(v)?;
            }
        }
    }
    Ok(Some((keys, values, deletes)))
}

/// `(values, moved keys, moved values)` for the store's two batches: each value of at least
/// `min_bytes` whose position is not in `inline`, or starting with `ref_head`'s first byte, is
/// replaced by `ref_head ‖ be32 i` (`i` its position) and moved to the key `key_head ‖ be32 i`;
/// None unless `values` holds only exact `bytes` and `inline` ascending positions (the
/// pure-Python twin's contract, `ledger/_native_py.py`).
#[pyfunction]
#[allow(clippy::type_complexity)]
pub fn value_refs<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyList>,
    key_head: &[u8],
    ref_head: &[u8],
    min_bytes: usize,
    inline: Vec<usize>,
) -> PyResult<Option<(Bound<'py, PyList>, Bound<'py, PyList>, Bound<'py, PyList>)>> {
    if inline.windows(2).any(|w| w[0] >= w[1]) {
        return Ok(None);
    }
    let mut keep = inline.iter().copied().peekable();
    let tag = ref_head.first().copied();
    let (out, moved_keys, moved) = (PyList::empty(py), PyList::empty(py), PyList::empty(py));
    let mut key = Vec::with_capacity(key_head.len() + 4);
    let mut reference = Vec::with_capacity(ref_head.len() + 4);
    for (i, item) in values.iter().enumerate() {
        let Ok(value) = item.downcast_exact::<PyBytes>() else {
            return Ok(None);
        };
        let v = value.as_bytes();
        let tagged = matches!((v.first(), tag), (Some(first), Some(t)) if *first == t);
        let kept = keep.next_if_eq(&i).is_some();
        if (v.len() < min_bytes || kept) && !tagged {
            out.append(value)?;
            continue;
        }
        let index = u32::try_from(i)
            .map_err(|_| pyo3::exceptions::PyValueError::new_err("too many values"))?
            .to_be_bytes();
        key.clear();
        key.extend_from_slice(key_head);
        key.extend_from_slice(&index);
        reference.clear();
        reference.extend_from_slice(ref_head);
        reference.extend_from_slice(&index);
        moved_keys.append(PyBytes::new(py, &key))?;
        moved.append(value)?;
        out.append(PyBytes::new(py, &reference))?;
    }
    Ok(Some((out, moved_keys, moved)))
}

/// `(chain, kind, body bytes, signer, nonce, sig, tx_id)` of a canonical version-1
/// transaction whose fields `Transaction.from_obj` accepts; None otherwise (then
/// `Transaction.decode` takes its Python path, which names the error).
#[pyfunction]
#[allow(clippy::type_complexity)]
pub fn tx_fields<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyBytes>,
) -> Option<(
    Bound<'py, PyBytes>,
    Bound<'py, PyString>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    i64,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
)> {
    let raw = data.as_bytes();
    let f = partledger_core::tx::tx_fields(raw)?;
    let kind = std::str::from_utf8(&raw[f.kind]).ok()?;
    Some((
        PyBytes::new(py, &raw[f.chain]),
        PyString::new(py, kind),
        PyBytes::new(py, &raw[f.body]),
        PyBytes::new(py, &raw[f.signer]),
        f.nonce,
        PyBytes::new(py, &raw[f.sig]),
        PyBytes::new(py, &f.tx_id),
    ))
}
