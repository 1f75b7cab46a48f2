"""SIGKILL real validator processes under load, again and again, and lose nothing.

A 4-validator devnet on loopback takes a steady load of signed EPCIS events through the API
(random nodes). A seeded nemesis repeatedly picks a victim — a random validator, the proposer
of the height being decided, or a node caught right as it commits a block — kills it with
SIGKILL at a random moment, leaves it down for a random while and restarts it; before the next
kill the consortium must have committed new blocks and the victim must answer again.
Afterwards every transaction any node reported committed is on every node at the same height,
all nodes hold the same block and state root at a common height, and `audit replay` accepts
every data directory.

CI runs 20 quick kills; `make soak` (`--run-slow`) runs 60 with longer downtimes.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from cli.node._devnet import Devnet, DevnetNode, create_devnet, kill_node
from ledger import ConsensusParams, read_key_file
from tests.faults._harness import (
    Load,
    audit_replay_all,
    check_nothing_lost,
    cleanup,
    common_block_agreement,
    converged_tip,
    get_status,
    snapshot_code,
    start_from,
    wait_api,
)
from tests.node_helpers import wait_until

CONSENSUS = ConsensusParams(timeout_ms=1000, max_block_txs=500, block_interval_ms=100)


def _crash_loop(tmp_path: Path, *, kills: int, seed: int, max_down_s: float) -> None:
    rng = random.Random(seed)
    print(f"\nSEED={seed} kills={kills}")
    d = tmp_path / "net"
    net = create_devnet(d, nodes=4, consensus=CONSENSUS)
    lock = threading.Lock()
    down: set[str] = set()
    code = snapshot_code(tmp_path / "code")
    try:
        for n in net.validators:
            net = net.with_pid(n.name, start_from(code, n.home))
        net.save()
        urls = [n.api for n in net.validators]
        wait_until(lambda: converged_tip(urls) and min(
            s["height"] for s in map(get_status, urls) if s) >= 1,
            timeout_s=90, what="the devnet to commit block 1")
        by_key = {read_key_file(n.home / "keys" / "node.key").public.hex(): n.name
                  for n in net.validators}

        def targets() -> list[DevnetNode]:
            with lock:
                return [n for n in net.validators if n.name not in down]

        modes: Counter[str] = Counter()
        t0 = time.monotonic()
        with Load(net, targets, seed=seed) as load:
            wait_until(lambda: len(load.reported) >= 50, timeout_s=60,
                       what="the first commits under load")
            for i in range(kills):
                mode = rng.choice(("random", "proposer", "at_commit"))
                victim = _pick(net, mode, rng, by_key)
                time.sleep(rng.uniform(0.0, 0.5))  # a random moment (not synchronisation)
                if mode == "at_commit":
                    h0 = get_status(victim.api)
                    if h0 is not None:  # kill the moment its height moves
                        wait_until(lambda v=victim, h=h0["height"]: (
                            (s := get_status(v.api)) is None or s["height"] > h),
                            timeout_s=30, interval_s=0.005, what="a commit on the victim")
                with lock:
                    down.add(victim.name)
                pid = Devnet.load(d).node(victim.name).pid
                assert pid is not None
                kill_node(pid)
                modes[mode] += 1
                time.sleep(rng.uniform(0.0, max_down_s))
                pid = start_from(code, victim.home)
                net = net.with_pid(victim.name, pid)
                net.save()
                wait_api(victim, pid, timeout_s=60)
                with lock:
                    down.discard(victim.name)
                # before the next kill: the consortium commits again, the victim caught up
                top = max(s["height"] for s in map(get_status, urls) if s)
                wait_until(lambda t=top: all(
                    (s := get_status(u)) is not None and s["height"] > t for u in urls),
                    timeout_s=90, what=f"all nodes past height {top} after kill {i + 1}")
            load_errors = load.errors
        load.check()
        elapsed = time.monotonic() - t0
        # quiescent: one tip everywhere and nothing left in any mempool (else a block of the
        # leftovers can commit on one node between this check and the next)
        tip = wait_until(lambda: all(
            (s := get_status(u)) is not None and s["mempool"] == 0 for u in urls)
            and converged_tip(urls), timeout_s=60, interval_s=0.05,
            what="one tip on every node and empty mempools")
        counts = check_nothing_lost(net, load, urls)
        h, block_hash, root = common_block_agreement(urls)
        print(f"{kills} kills ({dict(modes)}) in {elapsed:.0f}s; tip {tip['height']}; "
              f"{counts}; {load_errors} request errors while nodes were down; "
              f"common height {h} {block_hash[:16]} root {root[:16]}")
        assert counts["committed"] >= 100
        replays = audit_replay_all(net, code)
        assert len(replays) == 4 and all(r["height"] >= h for r in replays)
    finally:
        cleanup(d)


def _pick(net: Devnet, mode: str, rng: random.Random, by_key: dict[str, str]) -> DevnetNode:
    if mode == "proposer":
        for n in rng.sample(net.validators, len(net.validators)):
            s = get_status(n.api)
            if s is not None and s["consensus_height"] is not None:
                vals = s["validators"]
                return net.node(by_key[vals[(s["consensus_height"] + s["round"]) % len(vals)]])
    return rng.choice(net.validators)


def test_crash_loop_20_sigkills_under_load_lose_nothing(tmp_path: Path) -> None:
    seed = int(os.environ.get("PARTLEDGER_FAULT_SEED", "0")) or random.randrange(1, 10**6)
    _crash_loop(tmp_path, kills=20, seed=seed, max_down_s=0.5)


@pytest.mark.slow
def test_crash_loop_soak_60_sigkills(tmp_path: Path) -> None:
    seed = int(os.environ.get("PARTLEDGER_FAULT_SEED", "0")) or random.randrange(1, 10**6)
    _crash_loop(tmp_path, kills=60, seed=seed, max_down_s=3.0)
