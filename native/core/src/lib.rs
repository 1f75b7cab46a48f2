//! Hashing, Merkle trees and Ed25519 verification for partledger, with no Python in sight.
//!
//! Conventions shared with the pure-Python twin (`ledger/_native_py.py`):
//! SHA-256 everywhere; RFC 9162 Merkle trees (leaf = H(0x00 || d), node = H(0x01 || l || r),
//! the root of the empty tree is H("")).

pub mod ed25519;
pub mod merkle;
pub mod pool;
pub mod sha256;

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
    pool::fill_chunked(&mut out, PARALLEL_MIN_ITEMS, |first, chunk| {
        sha256::hash_many(first, chunk, |i| [items[i], &[], &[]])
    });
    out
}

/// Below this many signatures one thread is faster (one check costs about 20 µs).
pub const VERIFY_PARALLEL_MIN_ITEMS: usize = 4;

/// The strict Ed25519 verdict (see `ed25519`) of each `(message, signature, public key)`,
/// in order, one by one, spread over the threads allowed by `pool`.
pub fn verify_batch(messages: &[&[u8]], signatures: &[&[u8]], public_keys: &[&[u8]]) -> Vec<bool> {
    assert!(messages.len() == signatures.len() && messages.len() == public_keys.len());
    pool::map_indexed(messages.len(), VERIFY_PARALLEL_MIN_ITEMS, |i| {
        ed25519::verify(messages[i], signatures[i], public_keys[i])
    })
}
