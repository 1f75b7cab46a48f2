//! The Python face of partledger-core: a thin layer that converts arguments, releases the GIL
//! and returns bytes. Keep every rule in the core crate so that it can be tested without Python.

use partledger_core::{ed25519, merkle, pool, Hash};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

fn to_py_bytes<'py>(py: Python<'py>, hashes: Vec<Hash>) -> Vec<Bound<'py, PyBytes>> {
    hashes.iter().map(|h| PyBytes::new(py, h)).collect()
}

/// Borrow the contents of a sequence of `bytes` objects; they stay alive (and, being immutable,
/// unchanged) while the caller holds `items`, so the slices may cross `allow_threads`.
fn borrow_all<'a, 'py>(items: &'a [Bound<'py, PyBytes>]) -> Vec<&'a [u8]> {
    items.iter().map(|b| b.as_bytes()).collect()
}

fn extract_bytes_list<'py>(
    obj: &Bound<'py, PyAny>,
    what: &str,
) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    obj.extract::<Vec<Bound<'py, PyBytes>>>()
        .map_err(|_| PyTypeError::new_err(format!("{what} must be a sequence of bytes")))
}

/// SHA-256 of each item, in order.
#[pyfunction]
fn sha256_batch<'py>(
    py: Python<'py>,
    items: &Bound<'py, PyAny>,
) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    let items = extract_bytes_list(items, "items")?;
    let refs = borrow_all(&items);
    let hashes = py.allow_threads(|| partledger_core::sha256_batch(&refs));
    Ok(to_py_bytes(py, hashes))
}

/// RFC 9162 Merkle tree root over raw leaf data.
#[pyfunction]
fn merkle_root<'py>(py: Python<'py>, leaves: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let leaves = extract_bytes_list(leaves, "leaves")?;
    let refs = borrow_all(&leaves);
    let root = py.allow_threads(|| merkle::root(&refs));
    Ok(PyBytes::new(py, &root))
}

/// The strict Ed25519 verdict of each signature, in order (wrong lengths give False).
#[pyfunction]
fn verify_batch<'py>(
    py: Python<'py>,
    messages: &Bound<'py, PyAny>,
    signatures: &Bound<'py, PyAny>,
    public_keys: &Bound<'py, PyAny>,
) -> PyResult<Vec<bool>> {
    let messages = extract_bytes_list(messages, "messages")?;
    let signatures = extract_bytes_list(signatures, "signatures")?;
    let public_keys = extract_bytes_list(public_keys, "public_keys")?;
    if messages.len() != signatures.len() || messages.len() != public_keys.len() {
        return Err(PyValueError::new_err(
            "verify_batch: messages, signatures and public_keys differ in length",
        ));
    }
    let (m, s, k) = (borrow_all(&messages), borrow_all(&signatures), borrow_all(&public_keys));
    Ok(py.allow_threads(|| partledger_core::verify_batch(&m, &s, &k)))
}

/// The strict Ed25519 verdict on one signature.
#[pyfunction]
fn verify(
    py: Python<'_>,
    message: &Bound<'_, PyBytes>,
    signature: &Bound<'_, PyBytes>,
    public_key: &Bound<'_, PyBytes>,
) -> bool {
    let (m, s, k) = (message.as_bytes(), signature.as_bytes(), public_key.as_bytes());
    if m.len() < 4096 {
        ed25519::verify(m, s, k) // 20 µs: not worth a GIL round trip
    } else {
        py.allow_threads(|| ed25519::verify(m, s, k))
    }
}

/// Use `n` threads for later batch calls; 0 means all cores.
#[pyfunction]
fn set_threads(n: i64) -> PyResult<()> {
    let n = usize::try_from(n).map_err(|_| PyValueError::new_err("set_threads: n must be >= 0"))?;
    pool::set_threads(n).map_err(PyValueError::new_err)
}

/// The number of threads batch calls use now.
#[pyfunction]
fn get_threads() -> usize {
    pool::threads()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sha256_batch, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_root, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(verify_batch, m)?)?;
    m.add_function(wrap_pyfunction!(set_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_threads, m)?)?;
    Ok(())
}
