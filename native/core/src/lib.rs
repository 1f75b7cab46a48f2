//! Hashing and Merkle trees for partledger, with no Python in sight.
//!
//! Conventions shared with the pure-Python twin (`ledger/_native_py.py`):
//! SHA-256 everywhere; RFC 9162 Merkle trees (leaf = H(0x00 || d), node = H(0x01 || l || r),
//! the root of the empty tree is H("")).

pub mod merkle;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

/// Below this many items the thread hand-off costs more than it saves.
pub const PARALLEL_MIN_ITEMS: usize = 2048;

pub type Hash = [u8; 32];

pub fn sha256(data: &[u8]) -> Hash {
    Sha256::digest(data).into()
}

/// SHA-256 of each item, in order; spread over all cores for large batches.
pub fn sha256_batch(items: &[&[u8]]) -> Vec<Hash> {
    if items.len() >= PARALLEL_MIN_ITEMS {
        items.par_iter().map(|d| sha256(d)).collect()
    } else {
        items.iter().map(|d| sha256(d)).collect()
    }
}
