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

/// Leaf hashes of raw leaf data into `out`, in parallel for large inputs.
fn fill_leaf_hashes(leaves: &[&[u8]], out: &mut [Hash]) {
    pool::fill_chunked(out, PARALLEL_MIN_ITEMS, 256, |first, chunk| {
        sha256::hash_many(first, chunk, |i| [&[0u8], leaves[i], &[]])
    });
}

/// Leaf hashes of raw leaf data, in parallel for large inputs.
pub fn leaf_hashes(leaves: &[&[u8]]) -> Vec<Hash> {
    let mut out = vec![[0u8; 32]; leaves.len()];
    fill_leaf_hashes(leaves, &mut out);
    out
}

/// Writes the level above `level` into `next` and returns its length. An unpaired last node
/// moves up unchanged.
fn next_level(level: &[Hash], next: &mut Vec<Hash>) -> usize {
    let pairs = level.len() / 2;
    next.clear();
    next.resize(pairs, [0u8; 32]);
    pool::fill_chunked(next, PARALLEL_MIN_ITEMS, 256, |first, chunk| {
        sha256::hash_many(first, chunk, |i| [&[1u8], &level[2 * i], &level[2 * i + 1]])
    });
    if level.len() % 2 == 1 {
        next.push(level[level.len() - 1]);
    }
    next.len()
}

/// Root over already-computed leaf hashes.
pub fn root_from_leaf_hashes(mut level: Vec<Hash>) -> Hash {
    if level.is_empty() {
        return crate::sha256(b"");
    }
    let mut next = Vec::with_capacity(level.len() / 2 + 1);
    while level.len() > 1 {
        next_level(&level, &mut next);
        std::mem::swap(&mut level, &mut next);
    }
    level[0]
}

thread_local! {
    /// Two level buffers kept between calls (up to `SCRATCH_KEEP_MAX` hashes), so that a large
    /// tree does not pay for fresh, zeroed, page-faulting memory on every call.
    static SCRATCH: std::cell::RefCell<(Vec<Hash>, Vec<Hash>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

const SCRATCH_KEEP_MAX: usize = 1 << 20;

/// Root over raw leaf data.
pub fn root(leaves: &[&[u8]]) -> Hash {
    if leaves.is_empty() {
        return crate::sha256(b"");
    }
    SCRATCH.with(|cell| {
        let Ok(mut bufs) = cell.try_borrow_mut() else {
            return root_from_leaf_hashes(leaf_hashes(leaves)); // re-entered: no sharing
        };
        let (level, next) = &mut *bufs;
        level.clear();
        level.resize(leaves.len(), [0u8; 32]);
        fill_leaf_hashes(leaves, level);
        while level.len() > 1 {
            next_level(level, next);
            std::mem::swap(level, next);
        }
        let root = level[0];
        for buf in [level, next] {
            if buf.capacity() > SCRATCH_KEEP_MAX {
                *buf = Vec::new();
            }
        }
        root
    })
}

/// The largest power of two smaller than `n` (n > 1): where RFC 9162 splits a tree.
fn split(n: usize) -> usize {
    debug_assert!(n > 1);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// Root over a non-empty run of leaf hashes.
fn subtree_root(hashes: &[Hash]) -> Hash {
    root_from_leaf_hashes(hashes.to_vec())
}

/// Why a proof cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    IndexOutOfRange { index: u64, size: usize },
    /// The old size is not in 1..=size.
    OldSizeOutOfRange { old_size: u64, size: usize },
}

/// PATH(m, D[n]) of RFC 9162 §2.1.3.1 for leaf `index` of the tree over raw `leaves`.
pub fn inclusion_proof(index: u64, leaves: &[&[u8]]) -> Result<Vec<Hash>, ProofError> {
    let size = leaves.len();
    let m = usize::try_from(index)
        .ok()
        .filter(|&m| m < size)
        .ok_or(ProofError::IndexOutOfRange { index, size })?;
    let hashes = leaf_hashes(leaves);
    let mut proof = Vec::new();
    path(m, &hashes, &mut proof);
    Ok(proof)
}

fn path(m: usize, hashes: &[Hash], out: &mut Vec<Hash>) {
    let n = hashes.len();
    if n == 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, &hashes[..k], out);
        out.push(subtree_root(&hashes[k..]));
    } else {
        path(m - k, &hashes[k..], out);
        out.push(subtree_root(&hashes[..k]));
    }
}

/// PROOF(m, D[n]) of RFC 9162 §2.1.4.1: the tree of `old_size` leaves is a prefix of this one.
pub fn consistency_proof(old_size: u64, leaves: &[&[u8]]) -> Result<Vec<Hash>, ProofError> {
    let size = leaves.len();
    let m = usize::try_from(old_size)
        .ok()
        .filter(|&m| 0 < m && m <= size)
        .ok_or(ProofError::OldSizeOutOfRange { old_size, size })?;
    let hashes = leaf_hashes(leaves);
    let mut proof = Vec::new();
    subproof(m, &hashes, true, &mut proof);
    Ok(proof)
}

fn subproof(m: usize, hashes: &[Hash], complete: bool, out: &mut Vec<Hash>) {
    let n = hashes.len();
    if m == n {
        if !complete {
            out.push(subtree_root(hashes));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &hashes[..k], complete, out);
        out.push(subtree_root(&hashes[k..]));
    } else {
        subproof(m - k, &hashes[k..], false, out);
        out.push(subtree_root(&hashes[..k]));
    }
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

    /// RFC 9162 §2.1.3.2, written independently of `path`, to check proofs end to end.
    fn verify_inclusion(
        leaf: &[u8],
        index: usize,
        size: usize,
        proof: &[Hash],
        root: &Hash,
    ) -> bool {
        let (mut fn_, mut sn) = (index, size - 1);
        let mut r = leaf_hash(leaf);
        for p in proof {
            if sn == 0 {
                return false;
            }
            if fn_ & 1 == 1 || fn_ == sn {
                r = node_hash(p, &r);
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            } else {
                r = node_hash(&r, p);
            }
            fn_ >>= 1;
            sn >>= 1;
        }
        sn == 0 && r == *root
    }

    #[test]
    fn inclusion_proofs_verify_and_errors() {
        let data: Vec<Vec<u8>> = (0..40u32).map(|i| i.to_le_bytes().to_vec()).collect();
        for n in 1..data.len() {
            let refs: Vec<&[u8]> = data[..n].iter().map(|v| v.as_slice()).collect();
            let r = root(&refs);
            for m in 0..n {
                let proof = inclusion_proof(m as u64, &refs).unwrap();
                assert!(verify_inclusion(refs[m], m, n, &proof, &r), "n={n} m={m}");
                assert!(!verify_inclusion(b"other", m, n, &proof, &r));
            }
            assert!(inclusion_proof(n as u64, &refs).is_err());
        }
        assert!(consistency_proof(0, &[b"a"]).is_err());
        assert!(consistency_proof(2, &[b"a"]).is_err());
        assert_eq!(consistency_proof(1, &[b"a"]).unwrap(), Vec::<Hash>::new());
    }

    #[test]
    fn consistency_proof_rfc_shape() {
        // RFC 9162 §2.1.5 example: PROOF(3, D[7]) = [c, d, g, l]: 4 hashes.
        let data: Vec<Vec<u8>> = (0..7u8).map(|i| vec![i]).collect();
        let refs: Vec<&[u8]> = data.iter().map(|v| v.as_slice()).collect();
        let p = consistency_proof(3, &refs).unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(p[0], leaf_hash(refs[2]));
        assert_eq!(p[1], leaf_hash(refs[3]));
        assert_eq!(p[3], reference(&refs[4..]));
        assert_eq!(consistency_proof(4, &refs).unwrap().len(), 1); // [ l ]
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
