"""The Rust extension and its pure-Python twin give identical results on any input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import _native_py

native = pytest.importorskip("ledger._native", reason="Rust extension not built")

blobs = st.lists(st.binary(max_size=300), max_size=300)


@given(blobs)
@settings(max_examples=200, deadline=None)
def test_sha256_batch_twin(items: list[bytes]) -> None:
    assert list(native.sha256_batch(items)) == _native_py.sha256_batch(items)


@given(blobs)
@settings(max_examples=200, deadline=None)
def test_merkle_root_twin(leaves: list[bytes]) -> None:
    assert native.merkle_root(leaves) == _native_py.merkle_root(leaves)


def test_merkle_root_twin_large_parallel_path() -> None:
    leaves = [i.to_bytes(4, "big") * 50 for i in range(10_001)]
    assert native.merkle_root(leaves) == _native_py.merkle_root(leaves)
    assert list(native.sha256_batch(leaves)) == _native_py.sha256_batch(leaves)


# --- Ed25519: the extension, the twin and PyNaCl itself give the same verdict ----------------

def _pynacl(msg: bytes, sig: bytes, pk: bytes) -> bool:
    from nacl.bindings import crypto_sign_open
    from nacl.exceptions import BadSignatureError

    if len(sig) != 64 or len(pk) != 32:
        return False
    try:
        crypto_sign_open(sig + msg, pk)
    except BadSignatureError:
        return False
    return True


def _agree(msg: bytes, sig: bytes, pk: bytes) -> bool:
    expected = _pynacl(msg, sig, pk)
    assert native.verify(msg, sig, pk) is expected
    assert _native_py.verify(msg, sig, pk) is expected
    assert native.verify_batch([msg], [sig], [pk]) == [expected]
    return expected


_PARTS = ("R", "S", "key", "message")


@given(seed=st.binary(min_size=32, max_size=32), msg=st.binary(max_size=200),
       part=st.sampled_from(_PARTS), bits=st.lists(st.integers(0, 1599), min_size=1, max_size=3))
@settings(max_examples=400, deadline=None)
def test_verify_bit_flips_twin(seed: bytes, msg: bytes, part: str, bits: list[int]) -> None:
    """A valid signature with bits flipped in R, S, the key or the message."""
    import nacl.signing

    key = nacl.signing.SigningKey(seed)
    sig = bytes(key.sign(msg).signature)
    pk = bytes(key.verify_key)
    assert _agree(msg, sig, pk)
    fields = {"R": bytearray(sig[:32]), "S": bytearray(sig[32:]), "key": bytearray(pk),
              "message": bytearray(msg or b"\x00")}
    target = fields[part]
    for bit in bits:
        target[(bit // 8) % len(target)] ^= 1 << (bit % 8)
    _agree(bytes(fields["message"]), bytes(fields["R"] + fields["S"]), bytes(fields["key"]))


@given(msg=st.binary(max_size=64), sig=st.binary(min_size=64, max_size=64),
       pk=st.binary(min_size=32, max_size=32))
@settings(max_examples=300, deadline=None)
def test_verify_random_garbage_twin(msg: bytes, sig: bytes, pk: bytes) -> None:
    _agree(msg, sig, pk)


@given(msg=st.binary(max_size=16), sig=st.binary(max_size=80), pk=st.binary(max_size=40))
@settings(max_examples=200, deadline=None)
def test_verify_any_lengths_twin(msg: bytes, sig: bytes, pk: bytes) -> None:
    """Wrong lengths are a False verdict on both backends, never an exception."""
    _agree(msg, sig, pk)


@given(seeds=st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40),
       flips=st.sets(st.integers(0, 39)))
@settings(max_examples=50, deadline=None)
def test_verify_batch_twin(seeds: list[bytes], flips: set[int]) -> None:
    import nacl.signing

    msgs = [bytes([i]) * i for i in range(len(seeds))]
    keys = [nacl.signing.SigningKey(s) for s in seeds]
    sigs = [bytes(k.sign(m).signature) for k, m in zip(keys, msgs, strict=True)]
    sigs = [s[:5] + bytes([s[5] ^ 4]) + s[6:] if i in flips else s for i, s in enumerate(sigs)]
    pks = [bytes(k.verify_key) for k in keys]
    expected = [_pynacl(m, s, k) for m, s, k in zip(msgs, sigs, pks, strict=True)]
    assert expected == [i not in flips for i in range(len(seeds))]
    assert native.verify_batch(msgs, sigs, pks) == expected
    assert _native_py.verify_batch(msgs, sigs, pks) == expected


# --- Merkle proofs: same hashes, same errors --------------------------------------------------

@given(leaves=st.lists(st.binary(max_size=40), min_size=1, max_size=70), data=st.data())
@settings(max_examples=200, deadline=None)
def test_merkle_proofs_twin(leaves: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(leaves) - 1))
    old_size = data.draw(st.integers(1, len(leaves)))
    assert native.inclusion_proof(index, leaves) == _native_py.inclusion_proof(index, leaves)
    assert (native.consistency_proof(old_size, leaves)
            == _native_py.consistency_proof(old_size, leaves))


@pytest.mark.parametrize("module", [native, _native_py])
def test_merkle_proof_errors_twin(module: object) -> None:
    leaves = [b"a", b"b", b"c"]
    for index in (-1, 3, 10**20):
        with pytest.raises(IndexError, match=f"leaf {index} outside a tree of 3"):
            module.inclusion_proof(index, leaves)  # type: ignore[attr-defined]
    for old in (-1, 0, 4):
        with pytest.raises(ValueError, match=f"old size {old} outside 1..3"):
            module.consistency_proof(old, leaves)  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        module.inclusion_proof(0, ["a"])  # type: ignore[attr-defined]


@pytest.mark.parametrize("module", [native, _native_py])
@pytest.mark.parametrize("make", [tuple, iter, list])
def test_hashing_accepts_any_iterable_of_bytes(module: object, make: object) -> None:
    leaves = [b"x" * i for i in range(5)]
    assert module.sha256_batch(make(leaves)) == _native_py.sha256_batch(leaves)  # type: ignore
    assert module.merkle_root(make(leaves)) == _native_py.merkle_root(leaves)  # type: ignore


@pytest.mark.parametrize("module", [native, _native_py])
@pytest.mark.parametrize("bad", [b"abc", "abc", [b"a", "b"], [b"a", bytearray(b"b")], [1]])
def test_hashing_refuses_non_bytes(module: object, bad: object) -> None:
    with pytest.raises(TypeError, match="must be a sequence of bytes"):
        module.sha256_batch(bad)  # type: ignore[attr-defined]
