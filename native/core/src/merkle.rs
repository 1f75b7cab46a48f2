//! RFC 9162 Merkle tree hashing.
//!
//! The tree over n leaves splits at the largest power of two below n; computing it bottom-up
//! while carrying an unpaired last node up unchanged yields exactly the same root. Bottom-up,
//! the node over an aligned run of `CHUNK` leaves (a power of two) depends on those leaves only,
//! and the last, shorter run reduces to the same value on its own. So a root is computed run by
//! run (leaf hashes and every level of the run stay in the L1/L2 cache, and the runs are spread
//! over the threads with no step between levels), then over the runs' roots.

use std::cell::RefCell;

use sha2::{Digest, Sha256};

use crate::{pool, sha256, Hash, PARALLEL_MIN_ITEMS};

/// Leaves per run: a power of two. Small enough that a run's levels stay in cache and that
/// 100,000 leaves make about a hundred work units to balance over the threads; large enough
/// that a unit's hand-off costs little against its hashing (about 0.1 ms).
pub const CHUNK: usize = 1024;

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
    pool::fill_chunked(&mut out, PARALLEL_MIN_ITEMS, 256, |first, chunk| {
        sha256::hash_prefixed(Some(0), first, chunk, |i| leaves[i])
    });
    out
}

/// Writes the level above `level` into `next` and returns its length. An unpaired last node
/// moves up unchanged.
fn next_level(level: &[Hash], next: &mut [Hash]) -> usize {
    let pairs = level.len() / 2;
    sha256::node_hashes(&level[..2 * pairs], &mut next[..pairs]);
    if level.len() % 2 == 1 {
        next[pairs] = level[level.len() - 1];
        pairs + 1
    } else {
        pairs
    }
}

/// Per-thread buffers for one run: its leaf hashes and two levels to alternate between.
struct Scratch {
    leaves: Vec<Hash>,
    a: Vec<Hash>,
    b: Vec<Hash>,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            leaves: vec![[0u8; 32]; CHUNK],
            a: vec![[0u8; 32]; CHUNK / 2],
            b: vec![[0u8; 32]; CHUNK / 2],
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Option<Scratch>> = const { RefCell::new(None) };
}

/// `f` with this thread's scratch buffers (fresh ones if they are in use further up the stack).
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => f(slot.get_or_insert_with(Scratch::new)),
        Err(_) => f(&mut Scratch::new()),
    })
}

/// Root over a level of at most `CHUNK` nodes (bottom-up, carrying an unpaired last node).
fn reduce(level: &[Hash], a: &mut [Hash], b: &mut [Hash]) -> Hash {
    debug_assert!(!level.is_empty() && level.len() <= 2 * a.len().min(b.len()));
    if level.len() == 1 {
        return level[0];
    }
    let mut m = next_level(level, a);
    let (mut src, mut dst) = (a, b);
    while m > 1 {
        m = next_level(&src[..m], dst);
        std::mem::swap(&mut src, &mut dst);
    }
    src[0]
}

/// Root over `n > 0` leaf hashes or leaves: `run(c, scratch)` gives the root of run `c` (leaves
/// `c * CHUNK ..` up to `CHUNK` of them); runs go to the threads once `n >= PARALLEL_MIN_ITEMS`.
fn root_of_runs<F>(n: usize, run: F) -> Hash
where
    F: Fn(usize, &mut Scratch) -> Hash + Sync + Send,
{
    let runs = n.div_ceil(CHUNK);
    let min_parallel_runs = PARALLEL_MIN_ITEMS.div_ceil(CHUNK);
    let roots = pool::map_indexed(runs, min_parallel_runs, |c| with_scratch(|s| run(c, s)));
    if roots.len() == 1 {
        roots[0]
    } else {
        root_of_hashes(&roots)
    }
}

/// Root over already-computed leaf hashes (`H("")` for none).
pub fn root_of_hashes(hashes: &[Hash]) -> Hash {
    if hashes.is_empty() {
        return crate::sha256(b"");
    }
    root_of_runs(hashes.len(), |c, s| {
        let run = &hashes[c * CHUNK..hashes.len().min((c + 1) * CHUNK)];
        reduce(run, &mut s.a, &mut s.b)
    })
}

/// Root over raw leaf data.
pub fn root(leaves: &[&[u8]]) -> Hash {
    root_by(leaves.len(), |i| leaves[i])
}

/// Root over the `n` leaves `leaf(0), …, leaf(n - 1)`; `leaf` is called once per leaf, from any
/// of the threads.
pub fn root_by<'a, F>(n: usize, leaf: F) -> Hash
where
    F: Fn(usize) -> &'a [u8] + Sync + Send,
{
    if n == 0 {
        return crate::sha256(b"");
    }
    root_of_runs(n, |c, s| {
        let first = c * CHUNK;
        let len = CHUNK.min(n - first);
        sha256::hash_prefixed(Some(0), first, &mut s.leaves[..len], &leaf);
        let Scratch { leaves, a, b } = s;
        reduce(&leaves[..len], a, b)
    })
}

/// The largest power of two smaller than `n` (n > 1): where RFC 9162 splits a tree.
fn split(n: usize) -> usize {
    debug_assert!(n > 1);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// Root over a non-empty run of leaf hashes.
fn subtree_root(hashes: &[Hash]) -> Hash {
    root_of_hashes(hashes)
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
    fn root_matches_recursive_definition_across_runs() {
        // sizes around run boundaries, on one thread and on the pool
        let data: Vec<Vec<u8>> = (0..4 * CHUNK as u32 + 3)
            .map(|i| i.to_be_bytes().repeat(1 + i as usize % 3))
            .collect();
        let sizes = [
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            2 * CHUNK - 1,
            2 * CHUNK,
            2 * CHUNK + 1,
            3 * CHUNK + 5,
            4 * CHUNK + 3,
        ];
        for n in sizes {
            let refs: Vec<&[u8]> = data[..n].iter().map(|v| v.as_slice()).collect();
            let expected = reference(&refs);
            assert_eq!(root(&refs), expected, "n = {n}");
            assert_eq!(root_by(n, |i| refs[i]), expected, "n = {n}");
            assert_eq!(root_of_hashes(&leaf_hashes(&refs)), expected, "n = {n}");
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
