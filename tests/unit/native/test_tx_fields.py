"""The extension's `tx_fields` against its twin, and `Transaction.decode` on both backends:
the same transaction, or the same error, for valid and damaged bytes alike."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import SigningKey, Transaction, _native, _native_py, encode
from ledger.errors import DecodeError
from tests.byte_edits import apply_edits

CHAIN = bytes(range(32))
KEY = SigningKey(b"\x07" * 32)


def signed(kind: str, body: dict[str, object], nonce: int) -> bytes:
    return Transaction.create(KEY, chain=CHAIN, kind=kind, body=body, nonce=nonce).encode()


SAMPLES = [
    signed("ObjectEvent", {"eventID": "urn:uuid:1", "epcList": ["urn:epc:id:sgtin:1.2.3"]}, 0),
    signed("k", {}, 2**63 - 1),
    signed("ü" * 64, {"a": [1, -2, None, True, b"\x00"], "b": {"c": "é" * 40}}, 127),
    signed("x" * 64, {"deep": [[[[]]]]}, 128),
    signed("Kind", {"n": 2**40}, 65_536),
]


def decoded(raw: bytes) -> tuple[object, ...] | str:
    try:
        t = Transaction.decode(raw)
    except DecodeError as exc:
        return exc.code
    return (t.chain, t.kind, t.body, t.signer, t.nonce, t.sig, t.tx_id, t.raw)


@pytest.mark.parametrize("raw", SAMPLES)
def test_fields_of_valid_transactions(raw: bytes) -> None:
    got = _native.tx_fields(raw)
    assert got is not None and got == _native_py.tx_fields(raw)
    tx = Transaction.decode(raw)
    assert got == (tx.chain, tx.kind, encode(tx.body), tx.signer, tx.nonce, tx.sig, tx.tx_id)


def test_what_the_fast_path_leaves_to_python() -> None:
    m = Transaction.decode(SAMPLES[0]).to_map()
    odd = [
        encode({**m, "v": True}),           # equal to 1 in Python, not the integer 1
        encode({**m, "kind": "ü" * 65}),    # too long a kind
        encode({**m, "nonce": -1}),
        encode({**m, "body": []}),
        encode({**m, "extra": 1}),
        SAMPLES[0] + b"\x00",
        b"\x87" + SAMPLES[0][1:-1] + b"\x02",
    ]
    for raw in odd:
        assert _native.tx_fields(raw) is None
        assert _native_py.tx_fields(raw) is None


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SAMPLES),
       st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10**6), st.integers(0, 255)),
                min_size=1, max_size=3))
def test_damaged_bytes_give_the_same_answer_on_both_backends(
        raw: bytes, edits: list[tuple[int, int, int]]) -> None:
    from ledger import _accel

    bad = apply_edits(raw, edits)
    assert _native.tx_fields(bad) == _native_py.tx_fields(bad)
    fast = decoded(bad)
    saved = _accel.backend
    _accel.backend = _native_py
    try:
        slow = decoded(bad)
    finally:
        _accel.backend = saved
    assert fast == slow


def test_random_bodies_agree() -> None:
    rng = random.Random(5)
    for i in range(200):
        body = {f"f{j}": rng.choice([rng.randrange(-2**63, 2**63), "s" * rng.randrange(300),
                                     rng.randbytes(rng.randrange(70_000)), None, [1, [2]]])
                for j in range(rng.randrange(20))}
        raw = signed("K" * rng.randrange(1, 65), body, rng.randrange(2**63))
        assert _native.tx_fields(raw) == _native_py.tx_fields(raw), i
