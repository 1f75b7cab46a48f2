//! The Python face of partledger-core: a thin layer that converts arguments, releases the GIL
//! and returns bytes. Keep every rule in the core crate so that it can be tested without Python.

mod codec;
mod events;
mod keyfilter;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use partledger_core::merkle::ProofError;
use partledger_core::{ed25519, merkle, pool, Hash};
use pyo3::exceptions::{PyIndexError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PyList, PyString, PyTuple};

/// Every Rust-side allocation of the extension (Python objects keep Python's allocator).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (v2 and v3; the sys crate names only
/// some options).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keep the pages the extension frees instead of handing them back to the kernel (mimalloc's
/// default, after a delay). Executing a block allocates and frees tens of megabytes; purged,
/// they came back as page faults (each page zeroed by the kernel) at the next block: thousands
/// a second per node at saturation, a few percent of its CPU. Not purging keeps the
/// extension's high-water mark resident, which the node runs on one execution thread
/// (`cli/node/_offload.py`), so that is about one block's execution.
fn keep_freed_pages() {
    // SAFETY: sets a process-wide integer option; mimalloc reads it when it next purges.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

fn to_py_bytes<'py>(py: Python<'py>, hashes: Vec<Hash>) -> Vec<Bound<'py, PyBytes>> {
    hashes.iter().map(|h| PyBytes::new(py, h)).collect()
}

fn not_bytes(what: &str) -> PyErr {
    PyTypeError::new_err(format!("{what} must be a sequence of bytes"))
}

/// A snapshot of the caller's sequence as a tuple: the tuple owns a reference to every item and
/// cannot change, and `bytes` objects are immutable, so slices borrowed from it stay valid (and
/// may cross `allow_threads`) while it lives, whatever other threads do to the original list.
fn snapshot<'py>(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Bound<'py, PyTuple>> {
    if let Ok(list) = obj.downcast::<PyList>() {
        return Ok(list.to_tuple());
    }
    if let Ok(tuple) = obj.downcast::<PyTuple>() {
        return Ok(tuple.clone());
    }
    if obj.is_instance_of::<PyBytes>() || obj.is_instance_of::<PyString>() {
        return Err(not_bytes(what));
    }
    let items = obj
        .try_iter()
        .map_err(|_| not_bytes(what))?
        .collect::<PyResult<Vec<Bound<'py, PyAny>>>>()?;
    PyTuple::new(obj.py(), items)
}

/// The contents of every item of `tuple`, which must all be `bytes`.
fn borrow_all<'a>(tuple: &'a Bound<'_, PyTuple>, what: &str) -> PyResult<Vec<&'a [u8]>> {
    tuple
        .iter_borrowed()
        .map(|item| {
            if !item.is_instance_of::<PyBytes>() {
                return Err(not_bytes(what));
            }
            // SAFETY: `item` is a bytes object (checked above) referenced by `tuple`, which
            // lives for 'a and cannot drop it; bytes contents never change.
            unsafe {
                let data = pyo3::ffi::PyBytes_AsString(item.as_ptr()) as *const u8;
                let len = pyo3::ffi::PyBytes_Size(item.as_ptr()) as usize;
                Ok(std::slice::from_raw_parts(data, len))
            }
        })
        .collect()
}

/// SHA-256 of each item, in order.
#[pyfunction]
fn sha256_batch<'py>(
    py: Python<'py>,
    items: &Bound<'py, PyAny>,
) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    let items = snapshot(items, "items")?;
    let refs = borrow_all(&items, "items")?;
    let hashes = py.allow_threads(|| partledger_core::sha256_batch(&refs));
    Ok(to_py_bytes(py, hashes))
}

/// Where a `bytes` object's contents start, from the start of the object (`ob_sval` in
/// `PyBytesObject`, a struct the limited API does not show): measured once, on a real `bytes`
/// object, when the module is loaded; it is the same for every `bytes` object.
static BYTES_DATA_OFFSET: OnceLock<usize> = OnceLock::new();

fn measure_bytes_data_offset(py: Python<'_>) -> usize {
    let probe = PyBytes::new(py, b"offset probe");
    // SAFETY: `probe` is a live bytes object.
    let data = unsafe { ffi::PyBytes_AsString(probe.as_ptr()) };
    data as usize - probe.as_ptr() as usize
}

/// Borrowed pointers to the items of a list or tuple, read (never written, never reference
/// counted) by the hashing threads while the caller keeps the items alive and unchanged.
struct Items(Vec<*mut ffi::PyObject>);

// SAFETY: the hashing threads only read the immutable parts of the objects (type, size and
// contents of `bytes`), and every user of `Items` keeps them alive for as long as it is shared.
unsafe impl Send for Items {}
unsafe impl Sync for Items {}

impl Items {
    fn of_list(list: &Bound<'_, PyList>) -> Items {
        // SAFETY: every index is below the length; the items are borrowed, not owned.
        Items(
            (0..list.len())
                .map(|i| unsafe { ffi::PyList_GetItem(list.as_ptr(), i as ffi::Py_ssize_t) })
                .collect(),
        )
    }

    fn of_tuple(tuple: &Bound<'_, PyTuple>) -> Items {
        // SAFETY: as above.
        Items(
            (0..tuple.len())
                .map(|i| unsafe { ffi::PyTuple_GetItem(tuple.as_ptr(), i as ffi::Py_ssize_t) })
                .collect(),
        )
    }

    /// The Merkle root over the items, hashed straight from the `bytes` objects on the hashing
    /// threads; `None` if an item is not exactly a `bytes` object (the caller then takes the
    /// checked path, which accepts `bytes` subclasses and refuses anything else).
    ///
    /// # Safety
    /// Every item must stay alive and no item may be replaced while this runs: either the GIL
    /// stays held (no Python code can run) or the items belong to a tuple the caller holds.
    unsafe fn merkle_root_of_exact_bytes(&self) -> Option<Hash> {
        let offset = *BYTES_DATA_OFFSET.get()?;
        let other = AtomicBool::new(false);
        let root = merkle::root_by(self.0.len(), |i| {
            let item = self.0[i];
            // Py_TYPE and Py_SIZE read the object header (part of the stable ABI); a bytes
            // object's type, size and contents never change.
            if ffi::Py_TYPE(item) == std::ptr::addr_of_mut!(ffi::PyBytes_Type) {
                let data = (item as *const u8).add(offset);
                std::slice::from_raw_parts(data, ffi::Py_SIZE(item) as usize)
            } else {
                other.store(true, Ordering::Relaxed);
                &[]
            }
        });
        (!other.load(Ordering::Relaxed)).then_some(root)
    }
}

/// Lists of up to this many leaves are hashed in place with the GIL held: no copy of the list
/// (at 200 bytes a leaf, 2^17 leaves take about 8 ms on two cores, near Python's 5 ms thread
/// switch interval). Longer lists are first copied to a tuple, then hashed without the GIL.
/// The price: a large root (2048 leaves or more go to the threads) that finds the threads busy
/// with another Python thread's GIL-free batch waits for that batch with the GIL held.
const GIL_HELD_MAX_LEAVES: usize = 1 << 17;

/// RFC 9162 Merkle tree root over raw leaf data.
#[pyfunction]
fn merkle_root<'py>(py: Python<'py>, leaves: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let mut fast_tried = false;
    if let Ok(list) = leaves.downcast::<PyList>() {
        if list.len() <= GIL_HELD_MAX_LEAVES {
            // SAFETY: the GIL stays held and nothing here runs Python code, so no other thread
            // can change the list or free its items until this returns.
            if let Some(root) = unsafe { Items::of_list(list).merkle_root_of_exact_bytes() } {
                return Ok(PyBytes::new(py, &root));
            }
            fast_tried = true; // an item is not exactly `bytes`: straight to the checked path
        }
    }
    let leaves = snapshot(leaves, "leaves")?;
    let fast = if fast_tried {
        None
    } else {
        let items = Items::of_tuple(&leaves);
        // SAFETY: `leaves` is a tuple, alive until the end of this function: it holds a
        // reference to every item and cannot change.
        py.allow_threads(|| unsafe { items.merkle_root_of_exact_bytes() })
    };
    let root = match fast {
        Some(root) => root,
        None => {
            let refs = borrow_all(&leaves, "leaves")?;
            py.allow_threads(|| merkle::root(&refs))
        }
    };
    Ok(PyBytes::new(py, &root))
}

fn proof_error(e: ProofError) -> PyErr {
    match e {
        ProofError::IndexOutOfRange { index, size } => {
            PyIndexError::new_err(format!("leaf {index} outside a tree of {size}"))
        }
        ProofError::OldSizeOutOfRange { old_size, size } => {
            PyValueError::new_err(format!("old size {old_size} outside 1..{size}"))
        }
    }
}

/// RFC 9162 inclusion proof (PATH) of leaf `index` in the tree over raw `leaves`.
#[pyfunction]
fn inclusion_proof<'py>(
    py: Python<'py>,
    index: &Bound<'py, PyInt>,
    leaves: &Bound<'py, PyAny>,
) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    let leaves = snapshot(leaves, "leaves")?;
    let refs = borrow_all(&leaves, "leaves")?;
    let Ok(m) = index.extract::<u64>() else {
        return Err(PyIndexError::new_err(format!(
            "leaf {index} outside a tree of {}",
            refs.len()
        )));
    };
    let proof = py
        .allow_threads(|| merkle::inclusion_proof(m, &refs))
        .map_err(proof_error)?;
    Ok(to_py_bytes(py, proof))
}

/// RFC 9162 consistency proof (PROOF) from the tree of the first `old_size` leaves.
#[pyfunction]
fn consistency_proof<'py>(
    py: Python<'py>,
    old_size: &Bound<'py, PyInt>,
    leaves: &Bound<'py, PyAny>,
) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    let leaves = snapshot(leaves, "leaves")?;
    let refs = borrow_all(&leaves, "leaves")?;
    let Ok(old) = old_size.extract::<u64>() else {
        return Err(PyValueError::new_err(format!(
            "old size {old_size} outside 1..{}",
            refs.len()
        )));
    };
    let proof = py
        .allow_threads(|| merkle::consistency_proof(old, &refs))
        .map_err(proof_error)?;
    Ok(to_py_bytes(py, proof))
}

/// The strict Ed25519 verdict of each signature, in order (wrong lengths give False).
#[pyfunction]
fn verify_batch<'py>(
    py: Python<'py>,
    messages: &Bound<'py, PyAny>,
    signatures: &Bound<'py, PyAny>,
    public_keys: &Bound<'py, PyAny>,
) -> PyResult<Vec<bool>> {
    let messages = snapshot(messages, "messages")?;
    let signatures = snapshot(signatures, "signatures")?;
    let public_keys = snapshot(public_keys, "public_keys")?;
    let m = borrow_all(&messages, "messages")?;
    let s = borrow_all(&signatures, "signatures")?;
    let k = borrow_all(&public_keys, "public_keys")?;
    if m.len() != s.len() || m.len() != k.len() {
        return Err(PyValueError::new_err(
            "verify_batch: messages, signatures and public_keys differ in length",
        ));
    }
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
    let (m, s, k) = (
        message.as_bytes(),
        signature.as_bytes(),
        public_key.as_bytes(),
    );
    if m.len() < 4096 {
        ed25519::verify(m, s, k) // about 20 µs: not worth a GIL round trip
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

/// Called in a forked child (see `ledger._accel`): forget the parent's threads, run serially.
#[pyfunction]
fn reset_after_fork() {
    pool::reset_after_fork()
}

/// The number of threads batch calls use now.
#[pyfunction]
fn get_threads() -> usize {
    pool::threads()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    BYTES_DATA_OFFSET.get_or_init(|| measure_bytes_data_offset(m.py()));
    keep_freed_pages();
    m.add_function(wrap_pyfunction!(sha256_batch, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_root, m)?)?;
    m.add_function(wrap_pyfunction!(inclusion_proof, m)?)?;
    m.add_function(wrap_pyfunction!(consistency_proof, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(verify_batch, m)?)?;
    m.add_function(wrap_pyfunction!(set_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_threads, m)?)?;
    m.add_function(wrap_pyfunction!(reset_after_fork, m)?)?;
    m.add_function(wrap_pyfunction!(codec::canonical_check, m)?)?;
    m.add_function(wrap_pyfunction!(codec::canonical_encode, m)?)?;
    m.add_function(wrap_pyfunction!(codec::state_root, m)?)?;
    m.add_function(wrap_pyfunction!(codec::state_batch, m)?)?;
    m.add_function(wrap_pyfunction!(codec::value_refs, m)?)?;
    m.add_function(wrap_pyfunction!(codec::tx_fields, m)?)?;
    m.add_class::<keyfilter::KeyFilter>()?;
    m.add_class::<events::EventExecutor>()?;
    Ok(())
}
