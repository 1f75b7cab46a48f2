"""The extension's Merkle root takes its leaves straight from the Python objects.

A list of up to `GIL_HELD_MAX_LEAVES` leaves is hashed in place with the GIL held (no copy); a
longer list, a tuple or any other iterable is hashed from a tuple with the GIL released; an item
that is not exactly `bytes` sends the call down the checked path. Every path must give the twin's
root, on one thread and on two.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence

import pytest

from ledger import _merkle, _native_py
from tests.unit.native.gil_probe import spins_during

_native = pytest.importorskip("ledger._native", reason="Rust extension not built")

GIL_HELD_MAX_LEAVES = 1 << 17  # native/py/src/lib.rs


class Blob(bytes):
    """A bytes subclass: accepted, hashed by its bytes, through the checked path."""


def _leaves(n: int, salt: int = 0) -> list[bytes]:
    # lengths 0..70 and 200: every tail layout (one or two padding blocks) and the bench's size
    return [(i ^ salt).to_bytes(4, "big") * (i % 18) + bytes(i % 3) if i % 5 else
            bytes([i % 251]) * 200 for i in range(n)]


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request: pytest.FixtureRequest) -> Iterator[int]:
    _native.set_threads(request.param)
    yield int(request.param)
    _native.set_threads(0)


SHAPES: dict[str, Callable[[list[bytes]], object]] = {
    "list": lambda xs: xs,
    "tuple": tuple,
    "iterator": iter,
}


# sizes around the 1024-leaf runs the extension splits the tree into
@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 1023, 1024, 1025, 2047, 2048, 2049, 4097, 10_000])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_root_matches_twin_for_every_shape_and_thread_count(threads: int, n: int,
                                                            shape: str) -> None:
    leaves = _leaves(n)
    assert _native.merkle_root(SHAPES[shape](leaves)) == _native_py.merkle_root(leaves)


def test_ledger_merkle_root_passes_sequences_through(threads: int) -> None:
    leaves = _leaves(3000, salt=7)
    want = _native_py.merkle_root(leaves)
    assert _merkle.root(leaves) == want
    assert _merkle.root(tuple(leaves)) == want
    assert _merkle.root(_Seq(leaves)) == want


class _Seq(Sequence[bytes]):
    """A sequence that is neither a list nor a tuple."""

    def __init__(self, items: list[bytes]) -> None:
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i):  # type: ignore[no-untyped-def]
        return self._items[i]


@pytest.mark.parametrize("n", [1, 4, 3000])
@pytest.mark.parametrize("where", [0, -1])
def test_bytes_subclass_items_hash_as_their_bytes(threads: int, n: int, where: int) -> None:
    leaves = _leaves(n, salt=3)
    mixed: list[bytes] = list(leaves)
    mixed[where] = Blob(mixed[where])
    want = _native_py.merkle_root(leaves)
    assert _native.merkle_root(mixed) == want
    assert _native.merkle_root(tuple(mixed)) == want
    assert _native_py.merkle_root(mixed) == want


@pytest.mark.parametrize("bad", ["str", bytearray(b"x"), memoryview(b"x"), 7, None])
@pytest.mark.parametrize("where", [0, 1500, -1])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_non_bytes_item_is_refused_like_the_twin(threads: int, bad: object, where: int,
                                                 shape: str) -> None:
    leaves: list[object] = list(_leaves(3000))
    leaves[where] = bad
    for module in (_native, _native_py):
        with pytest.raises(TypeError, match="leaves must be a sequence of bytes"):
            module.merkle_root(SHAPES[shape](leaves))  # type: ignore[arg-type]


def test_list_longer_than_the_gil_held_limit(threads: int) -> None:
    leaves = [i.to_bytes(3, "big") for i in range(GIL_HELD_MAX_LEAVES + 3)]
    assert _native.merkle_root(leaves) == _native_py.merkle_root(leaves)
    leaves[-1] = "not bytes"  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="leaves must be a sequence of bytes"):
        _native.merkle_root(leaves)


@pytest.mark.parametrize("n", [5000, GIL_HELD_MAX_LEAVES + 1])
def test_list_changed_by_another_thread_gives_a_root_of_one_whole_state(n: int) -> None:
    """The list path reads the items while the GIL is held, the long-list path from a snapshot:
    another thread replacing the whole content over and over never shows a mixture (or frees
    an item under the hashing threads)."""
    a, b = _leaves(n, salt=1), _leaves(n, salt=2)
    roots = {_native_py.merkle_root(a), _native_py.merkle_root(b)}
    shared = list(a)
    stop = threading.Event()

    def flip() -> None:
        while not stop.is_set():
            shared[:] = b
            shared[:] = a

    flipper = threading.Thread(target=flip)
    flipper.start()
    try:
        seen = [_native.merkle_root(shared) for _ in range(30)]
    finally:
        stop.set()
        flipper.join()
    assert set(seen) <= roots


def test_tuple_is_hashed_with_the_gil_released() -> None:
    """While the extension hashes a tuple, this thread keeps running Python code (the same
    check as for verify_batch in test_module.py)."""
    leaves = tuple(bytes([i % 256]) * 200 for i in range(300_000))
    root, spins = spins_during(lambda: _native.merkle_root(leaves))
    assert root == _native_py.merkle_root(list(leaves))
    assert spins > 1000
