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
