"""The key filter in front of the store: never "absent" for a key it was given."""

from __future__ import annotations

import random

from ledger._keyfilter import KeyFilter


def _keys(rng: random.Random, n: int) -> list[bytes]:
    return [b"s/ev/urn:uuid:" + rng.randbytes(16).hex().encode() for _ in range(n)]


def test_KeyFilter_holds_every_key_added_across_growth() -> None:
    rng = random.Random(1)
    f = KeyFilter(capacity=1000)
    keys = _keys(rng, 20_000)
    f.update(keys[:700])
    for k in keys[700:1500]:  # one at a time across the first part's end
        f.add(k)
    f.update(keys[1500:])
    assert 0.98 * 20_000 <= f.count <= 20_000  # a new key that looks present is not counted
    assert len(f._parts) > 1  # it grew instead of filling up
    assert all(k in f for k in keys)


def test_KeyFilter_rewritten_keys_do_not_make_it_grow() -> None:
    """A store rewrites some keys at every block (nonces, counters): only new keys count."""
    rng = random.Random(3)
    f = KeyFilter(capacity=1000)
    hot = _keys(rng, 50)
    for _ in range(200):
        f.update(hot)
    assert f.count <= 50 and len(f._parts) == 1
    assert all(k in f for k in hot)


def test_KeyFilter_answers_absent_for_almost_every_other_key() -> None:
    rng = random.Random(2)
    f = KeyFilter(capacity=10_000)
    f.update(_keys(rng, 30_000))  # three parts
    others = _keys(rng, 20_000)
    false_positives = sum(k in f for k in others)
    assert false_positives < 0.03 * len(others)


def test_KeyFilter_empty_holds_nothing() -> None:
    f = KeyFilter()
    assert b"" not in f and b"x/1" not in f
    assert f.count == 0 and f.nbytes > 0
