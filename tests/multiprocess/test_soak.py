"""Soak (`make soak`, marked slow): a longer load with the proposer killed again and again."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from cli.node._devnet import Devnet, create_devnet, kill_node, start_node, stop_devnet
from ledger import ConsensusParams, Transaction, read_key_file
from tests.multiprocess.test_devnet import (
    Signer,
    post,
    processes_under,
    statuses,
    wait_converged,
)
from tests.node_helpers import status, wait_until

REPO = Path(__file__).resolve().parents[2]


def caught_up(urls: list[str], height: int) -> bool:
    """Every node has committed `height`, and they hold the same block there (under load the
    tips move too fast for one snapshot of all of them to match)."""
    if min(status(u)["height"] for u in urls) < height:
        return False
    return len({httpx.get(f"{u}/v1/blocks/{height}", timeout=10).json()["hash"]
                for u in urls}) == 1


@pytest.mark.slow
def test_soak_repeated_proposer_kills_under_load(tmp_path: Path) -> None:
    d = tmp_path / "net"
    net = create_devnet(d, nodes=4, consensus=ConsensusParams(
        timeout_ms=2000, max_block_txs=1000, block_interval_ms=250))
    for n in net.nodes:
        net = net.with_pid(n.name, start_node(n.home))
    net.save()
    keys = {read_key_file(n.home / "keys" / "node.key").public.hex(): n.name for n in net.nodes}
    urls = [n.api for n in net.nodes]
    try:
        wait_until(lambda: all(status(u)["height"] >= 1 for u in urls), timeout_s=120,
                   what="block 1")
        signers = [Signer(read_key_file(n.org_key), net.chain_id, urls[0]) for n in net.nodes]
        submitted: list[Transaction] = []
        live = list(urls)
        stop, pause, paused = threading.Event(), threading.Event(), threading.Event()

        errors: list[BaseException] = []

        def load() -> None:
            try:
                run_load()
            except BaseException as exc:
                errors.append(exc)

        def run_load() -> None:
            i = 0
            while not stop.is_set():
                if pause.is_set():
                    paused.set()
                    time.sleep(0.01)
                    continue
                s = signers[i % len(signers)]
                batch = s.make(50)
                post(live[i % len(live)], batch)
                submitted.extend(batch)
                i += 1

        loader = threading.Thread(target=load, daemon=True)
        loader.start()
        for _round in range(5):
            goal = len(submitted) + 1000
            wait_until(lambda goal=goal: len(submitted) >= goal or errors, timeout_s=120,
                       what="more load")
            assert not errors, errors
            pause.set()
            paused.wait(30)
            s0 = status(live[0])
            v = s0["validators"]
            name = keys[v[(s0["consensus_height"] + s0["round"]) % len(v)]]
            victim = Devnet.load(d).node(name)
            live.remove(victim.api)
            assert victim.pid is not None
            kill_node(victim.pid)
            paused.clear()
            pause.clear()
            h = max(status(u)["height"] for u in live)
            wait_until(lambda h=h: min(status(u)["height"] for u in live) >= h + 3,
                       timeout_s=90, what="progress without the proposer")
            Devnet.load(d).with_pid(name, start_node(victim.home)).save()
            target = max(status(u)["height"] for u in live) + 2
            wait_until(lambda target=target: caught_up(urls, target), timeout_s=120,
                       what="the restarted node to catch up")
            live.append(victim.api)
        stop.set()
        loader.join(60)
        for st in statuses(urls[0], submitted, wait_ms=60_000):
            assert st["status"] == "committed", st
        wait_converged(urls, timeout_s=60)
        print(f"\nsoak: {len(submitted)} txs, height {status(urls[0])['height']}")
    finally:
        stop_devnet(Devnet.load(d))
        for pid in processes_under(d):
            kill_node(pid)
    for n in net.nodes:
        out = subprocess.run([sys.executable, "-m", "cli.main", "audit", "replay", "--home",
                              str(n.home), "--json"], capture_output=True, text=True, cwd=REPO,
                             timeout=600)
        assert json.loads(out.stdout)["ok"], out.stdout
