"""The extension and its twin expose the same functions; the extension releases the GIL."""

from __future__ import annotations

import inspect
import threading

import pytest

import ledger
from ledger import _native, _native_py

PUBLIC = ["consistency_proof", "get_threads", "inclusion_proof", "merkle_root", "set_threads",
          "sha256_batch", "verify", "verify_batch"]


def test_twin_has_the_extension_functions_with_the_same_parameters() -> None:
    assert sorted(_native.__all__) == PUBLIC
    for name in PUBLIC:
        native_params = list(inspect.signature(getattr(_native, name)).parameters)
        twin_params = list(inspect.signature(getattr(_native_py, name)).parameters)
        assert native_params == twin_params, name


def test_set_threads_controls_get_threads() -> None:
    try:
        _native.set_threads(1)
        assert _native.get_threads() == 1
        _native.set_threads(2)
        assert _native.get_threads() == 2
        _native.set_threads(0)
        assert _native.get_threads() >= 1
    finally:
        _native.set_threads(0)
    assert _native_py.get_threads() == 1


@pytest.mark.parametrize("module", [_native, _native_py])
def test_set_threads_refuses_negative(module: object) -> None:
    with pytest.raises(ValueError, match=">= 0"):
        module.set_threads(-1)  # type: ignore[attr-defined]


def test_verify_batch_releases_the_gil() -> None:
    """While the extension verifies a batch, this thread keeps running Python code.

    If the GIL were held for the whole call, the loop below could not start until the batch
    was done and would count (almost) nothing.
    """
    key = ledger.SigningKey(bytes(range(32)))
    n = 6000
    msgs, sigs, pks = [b"gil"] * n, [key.sign(b"gil")] * n, [key.public] * n
    started, done = threading.Event(), threading.Event()
    result: list[list[bool]] = []

    def work() -> None:
        started.set()
        result.append(_native.verify_batch(msgs, sigs, pks))
        done.set()

    _native.set_threads(1)
    try:
        worker = threading.Thread(target=work)
        worker.start()
        started.wait()
        spins = 0
        while not done.is_set():
            spins += 1
        worker.join()
    finally:
        _native.set_threads(0)
    assert result == [[True] * n]
    assert spins > 1000
