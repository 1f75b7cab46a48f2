"""Where the node's blocking work runs: on the event loop when it is short, else in a thread.

Handing a call to a worker thread and back is not free on a busy machine: the worker has to
win the GIL from the event loop (which gives it up only every `sys.getswitchinterval()`, 5 ms)
and the loop has to win it back. Measured on the benchmark's 2-core VM at 100 tx/s, the
consensus state's write (one small `pwrite` + `fdatasync`, 0.1 ms on its own) took 2.7-4.3 ms
through a thread, the commit of a block of a few transactions 3.8-5.8 ms, and both lie on
every height's critical path. So short work runs right on the loop; long work (a large block,
or a disk whose syncs are slow) goes to a thread, so that the network and the API stay
responsive meanwhile.

"Short" is measured, not assumed: each phase keeps a moving average of how long its small
calls took when run inline, and a small call runs inline only while that average is under
`INLINE_MAX_S`. Only inline runs are timed: in a thread, the wall time includes waiting for the
GIL, which would keep a phase in threads for the very reason threads are slow. So while a phase
is in threads, every `PROBE_EVERY`-th small call runs inline to measure again: a disk that
turns slow moves its phase to threads after a call or two, one that recovers brings it back,
and a slow phase blocks the loop for one call in `PROBE_EVERY`.

Long calls that execute transactions (build, validate, commit, a synced block) all go to one
dedicated thread, `ExecThread`, and the others (a slow consensus-state sync) to trio's thread
cache. The node runs the executing calls one at a time anyway (under its execution lock), and
each allocates tens of megabytes (the extension's executor, the write set, the batch): on one
thread that is the same allocator pages block after block. Through trio's cache the calls
landed on whichever worker was idle, five or six of them a node; the native allocator
(mimalloc, thread-local pages) handed each idle worker's pages back to the kernel, and the
next block faulted them in again, zeroed, on another thread: 6,000-7,500 page faults a second
per node at saturation, 700 with one thread and no purging (docs/performance.md).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import outcome
import trio

T = TypeVar("T")

INLINE_MAX_TXS = 16  # blocks this small are built, validated and committed inline when fast
# a small call runs on the loop while its phase's average stays below this: well above what a
# fast disk's sync plus the scheduling jitter of a loaded machine cost (wall times of 2-5 ms
# were common for a 0.1 ms fdatasync while the four benchmark nodes shared two cores), well
# below a round timeout; a spinning disk or a throttled cloud volume goes over it
INLINE_MAX_S = 0.010
_WEIGHT = 0.3  # of the newest sample in a phase's moving average
PROBE_EVERY = 8  # while a phase runs in threads, every 8th small call runs inline to re-measure


class ExecThread:
    """One worker thread that runs the calls given to it, in order (see the module doc).

    Like `trio.to_thread.run_sync`, a call is never abandoned: a task cancelled while its call
    runs waits for it, and the cancellation takes effect after."""

    def __init__(self, name: str = "partledger-exec") -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Callable[[Any], None]] | None]
        self._jobs = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    async def run(self, fn: Callable[[], T]) -> T:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
            self._thread.start()
        token = trio.lowlevel.current_trio_token()
        task = trio.lowlevel.current_task()

        def deliver(result: outcome.Outcome[T]) -> None:
            try:
                token.run_sync_soon(trio.lowlevel.reschedule, task, result)
            except trio.RunFinishedError:  # the loop is gone: nobody waits for the result
                pass

        self._jobs.put((fn, deliver))
        result: T = await trio.lowlevel.wait_task_rescheduled(
            lambda _raise_cancel: trio.lowlevel.Abort.FAILED)
        return result

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, deliver = job
            deliver(outcome.capture(fn))

    def close(self) -> None:
        """Let the thread finish the calls it has and end."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread = None


class Offload:
    """Runs blocking calls inline or in a worker thread, per phase (see the module doc)."""

    def __init__(self) -> None:
        self._cost_s: dict[str, float] = {}
        self._threaded: dict[str, int] = {}  # small calls sent to threads since the last probe
        self.calls: dict[tuple[str, str], int] = {}  # (phase, "inline" | "thread") -> calls
        self.exec_thread = ExecThread()

    def cost_s(self, phase: str) -> float | None:
        """The moving average of the phase's small calls, None before the first one."""
        return self._cost_s.get(phase)

    def _inline(self, phase: str, *, small: bool) -> bool:
        """Would a call of this phase run on the event loop now?"""
        if not small:
            return False
        if self._cost_s.get(phase, 0.0) <= INLINE_MAX_S:
            return True
        return self._threaded.get(phase, 0) + 1 >= PROBE_EVERY  # time for a probe

    async def run(self, phase: str, fn: Callable[[], T], *, txs: int | None = None) -> T:
        """`fn()`, on the event loop if it is small (executes at most `INLINE_MAX_TXS`
        transactions; None: a call of fixed size, like the consensus state's write) and the
        phase is fast, else in a thread: `exec_thread` for a call that executes
        transactions, trio's thread cache for the others."""
        small = txs is None or txs <= INLINE_MAX_TXS
        if not self._inline(phase, small=small):
            if small:
                self._threaded[phase] = self._threaded.get(phase, 0) + 1
            self._count(phase, "thread")
            if txs is not None:
                return await self.exec_thread.run(fn)
            return await trio.to_thread.run_sync(fn)
        self._threaded[phase] = 0
        self._count(phase, "inline")
        await trio.lowlevel.checkpoint()  # let the loop run what is ready first
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            took = time.perf_counter() - t0
            prev = self._cost_s.get(phase)
            self._cost_s[phase] = took if prev is None else (
                (1 - _WEIGHT) * prev + _WEIGHT * took)

    def _count(self, phase: str, where: str) -> None:
        self.calls[phase, where] = self.calls.get((phase, where), 0) + 1

    def close(self) -> None:
        self.exec_thread.close()
