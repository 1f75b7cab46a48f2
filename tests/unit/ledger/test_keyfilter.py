"""The key filter in front of the store: never "absent" for a key it was given; both backends
(the Rust extension's `KeyFilter` and its pure-Python twin) are the same filter."""

from __future__ import annotations

import random
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import BACKEND_NAMES, load_backend


@pytest.fixture(params=BACKEND_NAMES)
def KeyFilter(request: pytest.FixtureRequest) -> Any:
    backend: ModuleType = load_backend(request.param)
    return backend.KeyFilter


def _keys(rng: random.Random, n: int) -> list[bytes]:
    return [b"s/ev/urn:uuid:" + rng.randbytes(16).hex().encode() for _ in range(n)]


def test_KeyFilter_holds_every_key_added_across_growth(KeyFilter: Any) -> None:
    rng = random.Random(1)
    f = KeyFilter(capacity=1000)
    keys = _keys(rng, 20_000)
    f.update(keys[:700])
    for k in keys[700:1500]:  # one at a time across the first part's end
        f.add(k)
    f.update(keys[1500:])
    assert 0.98 * 20_000 <= f.count <= 20_000  # a new key that looks present is not counted
    assert f.parts > 1  # it grew instead of filling up
    assert all(k in f for k in keys)


def test_KeyFilter_rewritten_keys_do_not_make_it_grow(KeyFilter: Any) -> None:
    """A store rewrites some keys at every block (nonces, counters): only new keys count."""
    rng = random.Random(3)
    f = KeyFilter(capacity=1000)
    hot = _keys(rng, 50)
    for _ in range(200):
        f.update(hot)
    assert f.count <= 50 and f.parts == 1
    assert all(k in f for k in hot)


def test_KeyFilter_answers_absent_for_almost_every_other_key(KeyFilter: Any) -> None:
    rng = random.Random(2)
    f = KeyFilter(capacity=10_000)
    f.update(_keys(rng, 30_000))  # three parts
    others = _keys(rng, 20_000)
    false_positives = sum(k in f for k in others)
    assert false_positives < 0.03 * len(others)


def test_KeyFilter_empty_holds_nothing(KeyFilter: Any) -> None:
    f = KeyFilter()
    assert b"" not in f and b"x/1" not in f
    assert f.count == 0 and f.nbytes > 0


def test_KeyFilter_takes_any_iterable_and_refuses_a_bad_capacity(KeyFilter: Any) -> None:
    f = KeyFilter(capacity=10)
    f.update(iter([b"a", b"b"]))
    f.update((b"c",))
    assert all(k in f for k in (b"a", b"b", b"c"))
    with pytest.raises(TypeError):
        f.update([b"d", ["unhashable"]])
    with pytest.raises(ValueError, match="capacity"):
        KeyFilter(capacity=-1)


def test_KeyFilter_backends_are_the_same_filter() -> None:
    """Same keys in, same bits set: equal sizes and counts, and the same answer for every
    key, false positives included (both hash with Python's `hash` in this process)."""
    twin, native = load_backend("python").KeyFilter, load_backend("native").KeyFilter
    rng = random.Random(4)
    added = _keys(rng, 25_000)
    a, b = twin(capacity=2_000), native(capacity=2_000)
    for f in (a, b):
        f.update(added[:10_000])
        for k in added[10_000:10_500]:
            f.add(k)
        f.update(iter(added[10_500:]))
        f.update(added[:100])  # again: not counted again
    assert (a.count, a.nbytes, a.parts) == (b.count, b.nbytes, b.parts)
    probes = added[::50] + _keys(rng, 40_000)
    assert [k in a for k in probes] == [k in b for k in probes]
    assert sum(k in a for k in probes[500:]) > 0  # the probes do include false positives


def test_KeyFilter_held_lists_the_positions_in_answers_its_membership_gives(KeyFilter: Any
                                                                           ) -> None:
    """`held` (a block's keys in one call) is `key in f` for each key, as positions."""
    rng = random.Random(4)
    f = KeyFilter(capacity=2_000)
    added = _keys(rng, 5_000)  # two parts
    f.update(added)
    mixed = added[::7] + _keys(rng, 3_000)
    rng.shuffle(mixed)
    held = f.held(mixed)
    assert held == [i for i, k in enumerate(mixed) if k in f]
    assert {mixed[i] for i in held} >= set(added[::7])
    assert len(held) < len(added[::7]) + 0.03 * 3_000
    assert f.held([]) == []
