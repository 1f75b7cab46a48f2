"""A node whose sync attempts all fail (its peers refuse to serve it, or serve blocks it
refuses) backs off instead of asking again at every tip announcement."""

from __future__ import annotations

import itertools

from cli.node._node import SYNC_RETRY_MAX_S, SYNC_RETRY_MIN_S, next_sync_delay


def test_failed_sync_attempts_wait_longer_each_time_up_to_a_cap() -> None:
    delays = [0.0]
    for _ in range(12):
        delays.append(next_sync_delay(delays[-1], progressed=False, gave_up=True))
    assert delays[1] == SYNC_RETRY_MIN_S
    assert all(b == min(SYNC_RETRY_MAX_S, 2 * a) for a, b in itertools.pairwise(delays[1:]))
    assert delays[-1] == SYNC_RETRY_MAX_S


def test_progress_or_catching_up_retries_at_once() -> None:
    assert next_sync_delay(16.0, progressed=True, gave_up=True) == 0.0
    assert next_sync_delay(16.0, progressed=False, gave_up=False) == 0.0
