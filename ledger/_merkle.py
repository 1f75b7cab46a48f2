"""RFC 9162 Merkle trees: roots, inclusion proofs, consistency proofs, and their verification.

Roots and proofs are built by the fast backend (`ledger._accel`: the Rust extension, or the pure
twin `ledger._native_py`, whose `inclusion_proof`/`consistency_proof` follow RFC 9162 §2.1 line by
line); proofs are checked here from the RFC's definitions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ledger import _accel


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf_hash(data: bytes) -> bytes:
    return _h(b"\x00" + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    return _h(b"\x01" + left + right)


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over raw leaf data.

    A list or tuple goes to the backend as it is: the extension hashes a list in place (no copy)
    and snapshots anything else itself, so a copy here would only cost time."""
    if not isinstance(leaves, (list, tuple)):
        leaves = list(leaves)
    return bytes(_accel.backend.merkle_root(leaves))


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1 for leaf `index` (IndexError outside the tree)."""
    return list(_accel.backend.inclusion_proof(index, list(leaves)))


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes],
                     root_hash: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does `proof` show raw `leaf` at `index` in the tree of `size`?"""
    if not 0 <= index < size or any(len(p) != 32 for p in proof):
        return False
    fn, sn = index, size - 1
    r = leaf_hash(leaf)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash


def consistency_proof(old_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 §2.1.4.1 (ValueError unless 0 < old_size <= len(leaves))."""
    return list(_accel.backend.consistency_proof(old_size, list(leaves)))


def verify_consistency(old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes,
                       new_root: bytes) -> bool:
    """RFC 9162 §2.1.4.2: is the tree of `new_size` an append-only extension of `old_size`?"""
    if any(len(p) != 32 for p in proof) or not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root
