"""The extension's `state_batch` (the store's LevelDB batch for a write set) against the
definition and the twin; the store refuses bad keys and values through it."""

from __future__ import annotations

import random
from collections import UserDict

import pytest

from ledger import _native, _native_py
from ledger._store import P_STATE, _state_batch
from ledger.errors import StoreError

MAX_KEY = 300


def definition(prefix: bytes, writes: dict[bytes, bytes | None]
               ) -> tuple[list[bytes], list[bytes], list[bytes]]:
    puts = sorted((prefix + k, v) for k, v in writes.items() if v is not None)
    return ([k for k, _ in puts], [v for _, v in puts],
            sorted(prefix + k for k, v in writes.items() if v is None))


@pytest.mark.parametrize("seed", range(10))
def test_native_and_twin_give_the_definition(seed: int) -> None:
    rng = random.Random(seed)
    writes: dict[bytes, bytes | None] = {}
    for _ in range(rng.choice((0, 1, 2, 50, 500))):
        writes[rng.randbytes(rng.choice((1, 5, 32, MAX_KEY)))] = (
            None if rng.random() < 0.2 else rng.randbytes(rng.choice((0, 3, 400))))
    if seed % 2:  # a write set already in key order (the native executor's) takes a fast path
        writes = dict(sorted(writes.items()))
    want = definition(b"s/", writes)
    got = _native.state_batch(b"s/", writes, MAX_KEY)
    assert got == want and _native_py.state_batch(b"s/", writes, MAX_KEY) == want
    assert got is not None and all(a is b for a, b in zip(got[1], [
        writes[k[2:]] for k in got[0]], strict=True))  # the dict's own value objects


@pytest.mark.parametrize("writes", [
    UserDict({b"k": b"v"}),  # a mapping that is not a dict
    {"k": b"v"},             # a str key
    {b"": b"v"},             # an empty key
    {b"k" * (MAX_KEY + 1): b"v"},
    {b"k": "v"},             # a str value
    {b"k": bytearray(b"v")},  # not exact bytes
])
def test_anything_else_is_declined(writes: object) -> None:
    assert _native.state_batch(b"s/", writes, MAX_KEY) is None
    assert _native_py.state_batch(b"s/", writes, MAX_KEY) is None


def test_store_state_batch_takes_mappings_and_refuses_bad_entries(accel_backend: object
                                                                  ) -> None:
    keys, values, deletes = _state_batch(UserDict({b"b": b"2", b"a": b"1", b"c": None}))
    assert (keys, values, deletes) == ([P_STATE + b"a", P_STATE + b"b"], [b"1", b"2"],
                                       [P_STATE + b"c"])
    for bad in ({b"": b"v"}, {"k": b"v"}, {b"k": 1}):
        with pytest.raises(StoreError) as info:
            _state_batch(bad)  # type: ignore[arg-type]
        assert info.value.code == "store_bad_key"


def test_value_refs_native_equals_twin_on_random_batches() -> None:
    rng = random.Random(5)
    for _ in range(200):
        values = [rng.choice([b"", b"\xc1", b"\xc1" + rng.randbytes(3)]) if rng.random() < 0.1
                  else rng.randbytes(rng.choice([0, 5, 127, 128, 400])) for _ in range(30)]
        height = rng.randrange(1 << 40).to_bytes(8, "big")
        inline = sorted(rng.sample(range(30), rng.randrange(10)))
        args = (values, b"b/" + height, b"\xc1" + height, rng.choice([1, 128, 1000]), inline)
        out = _native.value_refs(*args)
        assert out == _native_py.value_refs(*args)
        assert out is not None and len(out[0]) == len(values)
    for backend in (_native, _native_py):
        assert backend.value_refs([b"ok", bytearray(b"x")], b"k", b"\xc1", 1,  # type: ignore[list-item]
                                  []) is None
        assert backend.value_refs([b"a", b"b"], b"k", b"\xc1", 1, [1, 0]) is None
        assert backend.value_refs([b"a", b"b"], b"k", b"\xc1", 1, [1, 1]) is None
