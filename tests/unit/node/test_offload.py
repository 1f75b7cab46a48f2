"""Short blocking work runs on the event loop, long work in a worker thread, decided per phase
from measured durations (cli/node/_offload.py)."""

from __future__ import annotations

import threading
import time

import pytest
import trio
import trio.testing

from cli.node._offload import INLINE_MAX_S, INLINE_MAX_TXS, PROBE_EVERY, Offload

LARGE = INLINE_MAX_TXS + 1  # transactions: a block too large to execute on the loop


def _where(offload: Offload, phase: str, *, txs: int | None = None, sleep_s: float = 0.0
           ) -> threading.Thread:
    def work() -> threading.Thread:
        if sleep_s:
            time.sleep(sleep_s)
        return threading.current_thread()

    async def main() -> threading.Thread:
        return await offload.run(phase, work, txs=txs)

    return trio.run(main)


def test_small_fast_calls_run_inline_large_ones_in_a_thread() -> None:
    loop = threading.current_thread()
    offload = Offload()
    assert _where(offload, "commit") is loop
    assert _where(offload, "commit", txs=INLINE_MAX_TXS) is loop
    assert _where(offload, "commit", txs=LARGE) is not loop
    assert (offload.cost_s("commit") or 1.0) < INLINE_MAX_S


def test_a_slow_phase_moves_to_threads_and_probes_its_way_back() -> None:
    loop = threading.current_thread()
    offload = Offload()
    assert _where(offload, "persist", sleep_s=4 * INLINE_MAX_S) is loop  # not known slow yet
    # known slow: threads, except one probe in PROBE_EVERY, which is timed again
    places = [_where(offload, "persist") for _ in range(PROBE_EVERY)]
    assert places[:-1] == [places[0]] * (PROBE_EVERY - 1) and places[0] is not loop
    assert places[-1] is loop
    # the probes were fast: after a few the average is under the bound and calls stay inline
    for _ in range(10 * PROBE_EVERY):
        if (offload.cost_s("persist") or 1.0) <= INLINE_MAX_S:
            break
        _where(offload, "persist")
    assert [_where(offload, "persist") for _ in range(3)] == [loop] * 3


def test_thread_timings_do_not_count() -> None:
    """Time in a thread includes waiting for the GIL: only inline runs are measured."""
    offload = Offload()
    _where(offload, "commit", txs=LARGE, sleep_s=4 * INLINE_MAX_S)
    assert offload.cost_s("commit") is None


def test_phases_are_measured_apart() -> None:
    loop = threading.current_thread()
    offload = Offload()
    _where(offload, "persist", sleep_s=4 * INLINE_MAX_S)
    assert _where(offload, "persist") is not loop
    assert _where(offload, "validate") is loop
    assert _where(offload, "validate", txs=LARGE) is not loop
    assert offload.cost_s("build") is None


def test_an_exception_reaches_the_caller_and_the_call_is_still_timed() -> None:
    offload = Offload()

    def boom() -> None:
        raise ValueError("boom")

    async def main() -> None:
        await offload.run("commit", boom)

    with pytest.raises(ValueError, match="boom"):
        trio.run(main)
    assert offload.cost_s("commit") is not None


def test_calls_are_counted_by_phase_and_place() -> None:
    offload = Offload()
    _where(offload, "commit")
    _where(offload, "commit", txs=LARGE)
    _where(offload, "commit")
    assert offload.calls == {("commit", "inline"): 2, ("commit", "thread"): 1}


def test_executing_calls_share_one_thread_and_other_calls_do_not() -> None:
    """Build, validate and commit allocate tens of megabytes a block: on one thread the
    native allocator reuses its pages (the module doc)."""
    loop = threading.current_thread()
    offload = Offload()
    executing = {_where(offload, phase, txs=LARGE) for phase in ("build", "validate", "commit")
                 for _ in range(3)}
    assert len(executing) == 1 and loop not in executing
    _where(offload, "persist", sleep_s=4 * INLINE_MAX_S)
    assert _where(offload, "persist") not in executing | {loop}
    offload.close()


def test_an_exception_in_the_execution_thread_reaches_the_caller() -> None:
    offload = Offload()

    def boom() -> None:
        raise ValueError("boom in the thread")

    async def main() -> None:
        await offload.run("commit", boom, txs=LARGE)

    with pytest.raises(ValueError, match="boom in the thread"):
        trio.run(main)
    offload.close()


def test_a_cancelled_caller_waits_for_its_call_to_finish() -> None:
    """Like trio.to_thread.run_sync: a commit half done when its task is cancelled is not
    left running behind the node's back; its result arrives, the cancellation takes effect at
    the task's next checkpoint."""
    offload = Offload()
    started, release = threading.Event(), threading.Event()
    finished: list[str] = []

    def work() -> str:
        started.set()
        release.wait(10)
        finished.append("done")
        return "done"

    outcome_of_commit: list[str] = []

    async def commit(scope: trio.CancelScope) -> None:
        with scope:
            outcome_of_commit.append(await offload.run("commit", work, txs=LARGE))
            await trio.lowlevel.checkpoint()  # where the cancellation takes effect
            outcome_of_commit.append("not cancelled")

    async def main() -> None:
        scope = trio.CancelScope()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(commit, scope)
            await trio.to_thread.run_sync(started.wait)
            scope.cancel()
            await trio.testing.wait_all_tasks_blocked()
            assert outcome_of_commit == []  # still waiting for its call
            release.set()
        assert finished == ["done"] and outcome_of_commit == ["done"]

    trio.run(main)
    offload.close()
