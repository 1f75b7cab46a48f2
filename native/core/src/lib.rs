//! Hashing, Merkle trees and Ed25519 verification for partledger, with no Python in sight.
//!
//! Conventions shared with the pure-Python twin (`ledger/_native_py.py`):
//! SHA-256 everywhere; RFC 9162 Merkle trees (leaf = H(0x00 || d), node = H(0x01 || l || r),
//! the root of the empty tree is H("")).

pub mod codec;
pub mod ed25519;
pub mod events;
pub mod keyfilter;
pub mod merkle;
pub mod pool;
pub mod sha256;
pub mod tx;
pub mod value;

use sha2::{Digest, Sha256};

/// Below this many items the thread hand-off costs more than it saves.
pub const PARALLEL_MIN_ITEMS: usize = 2048;

pub type Hash = [u8; 32];

pub fn sha256(data: &[u8]) -> Hash {
    Sha256::digest(data).into()
}

/// SHA-256 of each item, in order; spread over all cores for large batches.
pub fn sha256_batch(items: &[&[u8]]) -> Vec<Hash> {
    let mut out = vec![[0u8; 32]; items.len()];
    pool::fill_chunked(&mut out, PARALLEL_MIN_ITEMS, 256, |first, chunk| {
        sha256::hash_prefixed(None, first, chunk, |i| items[i])
    });
    out
}

/// Below this many signatures one thread is faster (one check costs about 20 µs).
pub const VERIFY_PARALLEL_MIN_ITEMS: usize = 4;
/// Signatures per work unit: enough to share one field inversion, few enough to balance.
pub const VERIFY_MIN_CHUNK: usize = 8;

/// The strict Ed25519 verdict (see `ed25519`) of each `(message, signature, public key)`,
/// in order, one by one, spread over the threads allowed by `pool`.
pub fn verify_batch(messages: &[&[u8]], signatures: &[&[u8]], public_keys: &[&[u8]]) -> Vec<bool> {
    assert!(messages.len() == signatures.len() && messages.len() == public_keys.len());
    let n = messages.len();
    let mut out = vec![false; n];
    pool::fill_chunked(
        &mut out,
        VERIFY_PARALLEL_MIN_ITEMS,
        VERIFY_MIN_CHUNK,
        |first, chunk| {
            let range = first..first + chunk.len();
            ed25519::verify_each(
                &messages[range.clone()],
                &signatures[range.clone()],
                &public_keys[range],
                chunk,
            )
        },
    );
    out
}
