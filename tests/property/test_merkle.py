"""RFC 9162 Merkle trees against the RFC's own recursive definitions, and against tampering.

The reference functions below are transcriptions of RFC 9162 §2.1.1 (MTH), §2.1.3.1 (PATH) and
§2.1.4.1 (PROOF/SUBPROOF), written independently of `ledger._merkle` on purpose.
"""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import _merkle, _native_py


def _h(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def ref_mth(d: list[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return _h(b"")
    if n == 1:
        return _h(b"\x00" + d[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return _h(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def leaves(n: int, salt: int = 0) -> list[bytes]:
    return [f"leaf-{salt}-{i}".encode() * (1 + i % 3) for i in range(n)]


def test_merkle_root_matches_rfc_for_all_sizes_up_to_256() -> None:
    for n in range(257):
        d = leaves(n)
        want = ref_mth(d)
        assert _merkle.root(d) == want, n
        assert _native_py.merkle_root(d) == want, n


@given(st.integers(257, 3000), st.integers(0, 2**32))
@settings(max_examples=15, deadline=None)
def test_merkle_root_matches_rfc_for_random_larger_sizes(n: int, salt: int) -> None:
    d = leaves(n, salt)
    assert _merkle.root(d) == ref_mth(d)


def _pairs_up_to(limit: int, sample_to: int, rng: random.Random) -> list[tuple[int, int]]:
    pairs = [(m, n) for n in range(1, limit + 1) for m in range(1, n + 1)]
    for _ in range(300):
        n = rng.randrange(limit + 1, sample_to + 1)
        pairs.append((rng.randrange(1, n + 1), n))
    return pairs


def test_merkle_inclusion_proofs_all_sizes() -> None:
    rng = random.Random(5)
    for m1, n in _pairs_up_to(64, 256, rng):
        idx = m1 - 1
        d = leaves(n)
        root = ref_mth(d)
        proof = _merkle.inclusion_proof(idx, d)
        assert proof == ref_path(idx, d), (idx, n)
        assert _merkle.verify_inclusion(d[idx], idx, n, proof, root)
        # the same proof does not prove the leaf at another index
        if n > 1:
            other = (idx + 1) % n
            assert not _merkle.verify_inclusion(d[idx], other, n, proof, root)
        # (the tree size is not bound by the proof itself: RFC 9162 verifiers take it from a
        # signed source, here the block header tx_count, which the seal covers)


def test_merkle_consistency_proofs_all_sizes() -> None:
    rng = random.Random(6)
    for m, n in _pairs_up_to(64, 256, rng):
        d = leaves(n)
        old, new = ref_mth(d[:m]), ref_mth(d)
        proof = _merkle.consistency_proof(m, d)
        assert proof == ref_subproof(m, d, True), (m, n)
        assert _merkle.verify_consistency(m, n, proof, old, new)
        if m < n:
            assert not _merkle.verify_consistency(m, n, proof, new, new)
            assert not _merkle.verify_consistency(m, n, proof, old, old)


def _flips(blob: bytes) -> list[bytes]:
    """`blob` with one bit flipped at every byte position (a different bit each time)."""
    out = []
    for i in range(len(blob)):
        b = bytearray(blob)
        b[i] ^= 1 << (i % 8)
        out.append(bytes(b))
    return out


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 16, 31, 33])
def test_merkle_inclusion_tamper_any_byte_fails(n: int) -> None:
    d = leaves(n)
    root = ref_mth(d)
    for idx in range(n):
        proof = _merkle.inclusion_proof(idx, d)
        for j, p in enumerate(proof):
            for bad in _flips(p):
                assert not _merkle.verify_inclusion(d[idx], idx, n, [*proof[:j], bad,
                                                                     *proof[j + 1:]], root)
        for bad in _flips(d[idx]):
            assert not _merkle.verify_inclusion(bad, idx, n, proof, root)
        for bad in _flips(root):
            assert not _merkle.verify_inclusion(d[idx], idx, n, proof, bad)
        assert not _merkle.verify_inclusion(d[idx], idx, n, [*proof, root], root)
        if proof:
            assert not _merkle.verify_inclusion(d[idx], idx, n, proof[:-1], root)


@pytest.mark.parametrize("n", [2, 3, 5, 8, 12, 17, 32])
def test_merkle_consistency_tamper_any_byte_fails(n: int) -> None:
    d = leaves(n)
    new = ref_mth(d)
    for m in range(1, n):
        old = ref_mth(d[:m])
        proof = _merkle.consistency_proof(m, d)
        for j, p in enumerate(proof):
            for bad in _flips(p):
                assert not _merkle.verify_consistency(m, n, [*proof[:j], bad, *proof[j + 1:]],
                                                      old, new), (m, n, j)
        for bad in _flips(old):
            assert not _merkle.verify_consistency(m, n, proof, bad, new)
        for bad in _flips(new):
            assert not _merkle.verify_consistency(m, n, proof, old, bad)
        assert not _merkle.verify_consistency(m, n, proof[:-1], old, new)
        assert not _merkle.verify_consistency(m, n, [*proof, new], old, new)


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=80), st.data())
@settings(max_examples=150, deadline=None)
def test_merkle_proofs_hypothesis(d: list[bytes], data: st.DataObject) -> None:
    n = len(d)
    idx = data.draw(st.integers(0, n - 1))
    root = _merkle.root(d)
    assert root == ref_mth(d)
    proof = _merkle.inclusion_proof(idx, d)
    assert _merkle.verify_inclusion(d[idx], idx, n, proof, root)
    m = data.draw(st.integers(1, n))
    cp = _merkle.consistency_proof(m, d)
    assert _merkle.verify_consistency(m, n, cp, ref_mth(d[:m]), root)
    if proof:
        j = data.draw(st.integers(0, len(proof) - 1))
        k = data.draw(st.integers(0, 31))
        bad = bytearray(proof[j])
        bad[k] ^= 0x80
        assert not _merkle.verify_inclusion(d[idx], idx, n, [*proof[:j], bytes(bad),
                                                             *proof[j + 1:]], root)
