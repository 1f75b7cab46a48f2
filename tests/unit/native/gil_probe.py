"""Does a native call release the GIL? (test helper)"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from ledger import _native

T = TypeVar("T")


def spins_during(call: Callable[[], T]) -> tuple[T, int]:
    """Run `call` in a thread (the extension on one worker thread) and count how often this
    thread goes round a Python loop meanwhile. If the GIL were held for the whole call, the
    loop could not run until it was done and would count (almost) nothing."""
    started, done = threading.Event(), threading.Event()
    result: list[T] = []

    def work() -> None:
        started.set()
        result.append(call())
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
    return result[0], spins
