//! The Python face of partledger-core: a thin layer that converts arguments, releases the GIL
//! and returns bytes. Keep every rule in the core crate so that it can be tested without Python.

use partledger_core::{merkle, sha256_batch as core_sha256_batch, Hash};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

fn to_py_bytes<'py>(py: Python<'py>, hashes: Vec<Hash>) -> Vec<Bound<'py, PyBytes>> {
    hashes.iter().map(|h| PyBytes::new(py, h)).collect()
}

/// SHA-256 of each item, in order.
#[pyfunction]
fn sha256_batch<'py>(py: Python<'py>, items: Vec<Vec<u8>>) -> Vec<Bound<'py, PyBytes>> {
    let hashes = py.allow_threads(|| {
        let refs: Vec<&[u8]> = items.iter().map(|v| v.as_slice()).collect();
        core_sha256_batch(&refs)
    });
    to_py_bytes(py, hashes)
}

/// RFC 9162 Merkle tree root over raw leaf data.
#[pyfunction]
fn merkle_root<'py>(py: Python<'py>, leaves: Vec<Vec<u8>>) -> Bound<'py, PyBytes> {
    let root = py.allow_threads(|| {
        let refs: Vec<&[u8]> = leaves.iter().map(|v| v.as_slice()).collect();
        merkle::root(&refs)
    });
    PyBytes::new(py, &root)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sha256_batch, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_root, m)?)?;
    Ok(())
}
