//! RFC 9162 Merkle tree hashing.
//!
//! The tree over n leaves splits at the largest power of two below n; computing it bottom-up
//! while carrying an unpaired last node up unchanged yields exactly the same root.

use sha2::{Digest, Sha256};

use crate::{pool, sha256, Hash, PARALLEL_MIN_ITEMS};

pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Leaf hashes of raw leaf data, in parallel for large inputs.
pub fn leaf_hashes(leaves: &[&[u8]]) -> Vec<Hash> {
    let mut out = vec![[0u8; 32]; leaves.len()];
    pool::fill_chunked(&mut out, PARALLEL_MIN_ITEMS, |first, chunk| {
        sha256::hash_many(first, chunk, |i| [&[0u8], leaves[i], &[]])
    });
    out
}

/// Root over already-computed leaf hashes.
pub fn root_from_leaf_hashes(mut level: Vec<Hash>) -> Hash {
    if level.is_empty() {
        return crate::sha256(b"");
    }
    while level.len() > 1 {
        let pairs = level.len() / 2;
        let mut next = vec![[0u8; 32]; pairs];
        pool::fill_chunked(&mut next, PARALLEL_MIN_ITEMS, |first, chunk| {
            sha256::hash_many(first, chunk, |i| [&[1u8], &level[2 * i], &level[2 * i + 1]])
        });
        if level.len() % 2 == 1 {
            next.push(level[level.len() - 1]);
        }
        level = next;
    }
    level[0]
}

/// Root over raw leaf data.
pub fn root(leaves: &[&[u8]]) -> Hash {
    root_from_leaf_hashes(leaf_hashes(leaves))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(leaves: &[&[u8]]) -> Hash {
        match leaves.len() {
            0 => crate::sha256(b""),
            1 => leaf_hash(leaves[0]),
            n => {
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                node_hash(&reference(&leaves[..k]), &reference(&leaves[k..]))
            }
        }
    }

    #[test]
    fn root_matches_recursive_definition() {
        let data: Vec<Vec<u8>> = (0..300u32).map(|i| i.to_be_bytes().to_vec()).collect();
        for n in 0..data.len() {
            let refs: Vec<&[u8]> = data[..n].iter().map(|v| v.as_slice()).collect();
            assert_eq!(root(&refs), reference(&refs), "n = {n}");
        }
    }
}
