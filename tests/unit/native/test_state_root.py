"""The extension's `state_root` against the definition (`ledger._app.next_state_root` on its
Python path) and the twin, on write sets of every shape a block produces."""

from __future__ import annotations

import random
from collections import UserDict

import pytest

from ledger import _app, _native, _native_py
from ledger._app import STATE_ROOT_DOMAIN
from ledger._codec import encode
from ledger._crypto import sha256


def definition(prev: bytes, writes: dict[bytes, bytes | None]) -> bytes:
    return sha256(STATE_ROOT_DOMAIN + prev + sha256(encode(sorted(writes.items()))))


def write_set(rng: random.Random, n: int) -> dict[bytes, bytes | None]:
    out: dict[bytes, bytes | None] = {}
    for _ in range(n):
        key = rng.randbytes(rng.choice((1, 5, 31, 32, 40, 300)))
        out[key] = None if rng.random() < 0.1 else rng.randbytes(rng.choice((0, 1, 255, 256,
                                                                             70_000)))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_native_and_twin_give_the_definition(seed: int) -> None:
    rng = random.Random(seed)
    writes = write_set(rng, rng.choice((0, 1, 2, 15, 16, 500)))
    prev = rng.randbytes(32)
    want = definition(prev, writes)
    assert _native.state_root(STATE_ROOT_DOMAIN, prev, writes) == want
    assert _native_py.state_root(STATE_ROOT_DOMAIN, prev, writes) == want


def test_next_state_root_is_the_definition_on_both_backends(accel_backend: object) -> None:
    writes = write_set(random.Random(7), 200)
    assert _app.next_state_root(bytes(32), writes) == definition(bytes(32), writes)


@pytest.mark.parametrize("writes", [
    UserDict({b"k": b"v"}),               # a mapping that is not a dict
    {"k": b"v"},                          # a str key
    {b"k": "v"},                          # a str value
    {b"k": bytearray(b"v")},              # not exact bytes
])
def test_anything_else_is_left_to_the_definition(writes: object) -> None:
    assert _native.state_root(STATE_ROOT_DOMAIN, bytes(32), writes) is None
    assert _native_py.state_root(STATE_ROOT_DOMAIN, bytes(32), writes) is None


def test_the_definition_still_answers_a_mapping() -> None:
    writes = {b"a": b"1", b"b": None}
    assert _app.next_state_root(bytes(32), UserDict(writes)) == definition(bytes(32), writes)
