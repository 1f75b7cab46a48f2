"""SIGKILL a block writer at random moments; the store must always reopen complete.

Each round starts a writer process on the same store, waits until it is writing, kills it with
SIGKILL after a seeded random delay, then reopens the store and checks that it opens, that its
whole chain replays (hash links, seals, signatures, state roots, indexes, state) and that its tip
is at least the last height the writer reported durable.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from ledger import Store
from ledger._chain import init_store
from ledger._replay import replay_store
from tests.unit.ledger.helpers import KVApp, make_consortium

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 50
BUDGET_S = 300.0  # a guard against pathological slowness; a run takes ~30 s on 2 idle cores
CONSORTIUM_SEED = 11


def _round(path: Path, rng: random.Random, i: int) -> int:
    """One writer life; returns the last height it reported durable."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.crash._writer", str(path), str(CONSORTIUM_SEED),
         str(rng.randrange(2**31))],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first == "ready\n", f"round {i}: writer did not start: {first!r} " \
                                   f"{proc.stderr.read() if proc.stderr else ''}"
        first_height = proc.stdout.readline()  # it is writing: at least one block is durable
        time.sleep(rng.uniform(0.0, 0.12))  # the random moment: wall time IS the input here
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        lines = [first_height, *proc.stdout.read().split()]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                f.close()
    assert proc.returncode == -signal.SIGKILL, f"round {i}: writer exited by itself"
    return int(lines[-1]) if lines else 0


def test_crash_sigkill_writer_never_loses_durable_blocks(tmp_path: Path) -> None:
    rng = random.Random(20261126)
    c = make_consortium(seed=CONSORTIUM_SEED)
    path = tmp_path / "ledger"
    init_store(path, c.genesis, KVApp()).close()
    t0 = time.monotonic()
    durable = 0
    tips = []
    for i in range(ROUNDS):
        reported = _round(path, rng, i)
        durable = max(durable, reported)
        with Store.open(path, genesis=c.genesis, read_only=True, paranoid=True) as s:
            tip = s.height
            assert tip >= durable, f"round {i}: tip {tip} < durable {durable}"
            report = replay_store(s, c.genesis, KVApp())
            assert report.height == tip
        tips.append(tip)
        assert time.monotonic() - t0 < BUDGET_S, f"crash test over budget after {i + 1} rounds"
    # every round wrote at least one block before its kill
    assert tips[-1] >= ROUNDS
    print(f"crash test: {ROUNDS} kills, final height {tips[-1]}, "
          f"{time.monotonic() - t0:.1f}s")
