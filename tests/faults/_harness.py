"""Shared pieces of the fault tests on real node processes: a background load of signed EPCIS
events through the API, and the end-of-run checks (nothing any node reported committed is
missing anywhere, one tip, `audit replay` accepts every data directory).

The load never asserts on a single request: nodes die under it. It records every transaction
it got accepted and every commit any node reported, so the final check can hold each node to
everything any node ever said was final.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from cli.node._devnet import (
    Devnet,
    DevnetNode,
    is_node_process,
    kill_node,
    node_command,
    stop_devnet,
)
from ledger import SigningKey, Transaction, read_key_file
from tests.node_helpers import chunks, commission_tx, processes_under, wait_until

REPO = Path(__file__).resolve().parents[2]


def snapshot_code(dest: Path) -> Path:
    """A private copy of the program's packages (with the built extension), so that every
    restart in a long run executes the same code even while the work tree is being edited
    (a state machine changed mid-run would rightly refuse the chain: that is not a fault
    under test)."""
    dest.mkdir(parents=True, exist_ok=True)
    for pkg in ("ledger", "consensus", "p2p", "cli"):
        shutil.copytree(REPO / pkg, dest / pkg,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def start_from(code: Path, home: Path, *, env: dict[str, str] | None = None,
               prefix: list[str] | None = None) -> int:
    """`start_node`, but running the snapshot in `code` (optionally behind a command prefix
    such as `ip netns exec NS`); output goes to HOME/node.log."""
    log = open(home / "node.log", "ab")  # noqa: SIM115 - handed to the child, closed below
    try:
        proc = subprocess.Popen([*(prefix or []), *node_command(home)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True, cwd=str(code),
                                env={**os.environ, "PYTHONPATH": str(code), **(env or {})})
    finally:
        log.close()
    return proc.pid


def get_status(url: str, timeout_s: float = 3.0) -> dict[str, Any] | None:
    """The node's status, or None when it does not answer (dead, starting, overloaded)."""
    try:
        r = httpx.get(f"{url}/v1/status", timeout=timeout_s)
    except httpx.HTTPError:
        return None
    if r.status_code != 200:
        return None
    doc: dict[str, Any] = r.json()
    return doc


def tx_statuses(url: str, ids: list[str], *, wait_ms: int = 0) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in chunks(ids, 5000):
        r = httpx.post(f"{url}/v1/txs/status", json={"tx_ids": part, "wait_ms": wait_ms},
                       timeout=wait_ms / 1000 + 30)
        r.raise_for_status()
        out.extend(r.json()["statuses"])
    return out


class Load:
    """A thread that signs commissioning events for every member and submits them in small
    batches to random nodes that `targets()` names, asking for the next nonce each time (so a
    batch lost with a killed node's mempool is simply re-signed), and polls commit statuses."""

    def __init__(self, net: Devnet, targets: Callable[[], list[DevnetNode]], *,
                 seed: int, batch: int = 10, pause_s: float = 0.05,
                 headers: dict[str, str] | None = None) -> None:
        self.chain = net.chain_id
        self.keys: list[SigningKey] = [read_key_file(n.org_key) for n in net.validators]
        self.targets = targets
        self.rng = random.Random(seed)
        self.batch, self.pause_s = batch, pause_s
        self.headers = headers or {}
        self.submitted: dict[str, Transaction] = {}
        self.reported: dict[str, tuple[str, int]] = {}  # tx id -> (node name, height)
        self.errors = 0
        self.failures: list[BaseException] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)
        self._tag = f"L{seed}t{time.monotonic_ns() % 10**9}"
        self._count = 0

    def start(self) -> Load:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the load thread did not stop"

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        last_poll = time.monotonic()
        with httpx.Client(timeout=5, headers=self.headers) as client:
            i = 0
            while not self._stop.is_set():
                try:
                    self._submit_once(client, self.keys[i % len(self.keys)])
                    if time.monotonic() - last_poll > 0.5:
                        self._poll(client)
                        last_poll = time.monotonic()
                except httpx.HTTPError:
                    self.errors += 1  # the node died or restarts under us: expected
                except BaseException as exc:  # surfaced by check()
                    self.failures.append(exc)
                    return
                i += 1
                self._stop.wait(self.pause_s)

    def _submit_once(self, client: httpx.Client, key: SigningKey) -> None:
        live = self.targets()
        if not live:
            return
        node = self.rng.choice(live)
        r = client.get(f"{node.api}/v1/nonce/{key.public.hex()}")
        r.raise_for_status()
        nonce = int(r.json()["next_nonce"])
        txs = []
        for j in range(self.batch):
            self._count += 1
            txs.append(commission_tx(key, self.chain, nonce + j, f"{self._tag}s{self._count}"))
        r = client.post(f"{node.api}/v1/txs", json={"txs": [t.encode().hex() for t in txs]})
        if r.status_code not in (202, 400):
            r.raise_for_status()
        doc = r.json()
        with self._lock:
            for t, res in zip(txs, doc.get("results", [doc]), strict=True):
                if res.get("accepted"):
                    self.submitted[t.tx_id.hex()] = t

    def _poll(self, client: httpx.Client) -> None:
        live = self.targets()
        if not live:
            return
        node = self.rng.choice(live)
        with self._lock:
            ids = [i for i in self.submitted if i not in self.reported][-3000:]
        if not ids:
            return
        r = client.post(f"{node.api}/v1/txs/status", json={"tx_ids": ids})
        r.raise_for_status()
        with self._lock:
            for st in r.json()["statuses"]:
                if st["status"] == "committed":
                    self.reported.setdefault(st["tx_id"], (node.name, st["height"]))

    def check(self) -> None:
        assert not self.failures, self.failures


def converged_tip(urls: list[str]) -> dict[str, Any] | None:
    sts = [get_status(u) for u in urls]
    if any(s is None for s in sts):
        return None
    tips = {(s["height"], s["tip_hash"], s["state_root"]) for s in sts if s}
    return sts[0] if len(tips) == 1 else None


def common_block_agreement(urls: list[str]) -> tuple[int, str, str]:
    """The highest height every node holds, and the single (hash, state root) they all hold
    there. Fails if two nodes hold different blocks at any height checked."""
    heights = []
    for u in urls:
        s = get_status(u, timeout_s=10)
        assert s is not None, f"{u} does not answer"
        heights.append(s["height"])
    h = min(heights)
    seen = {}
    for u in urls:
        b = httpx.get(f"{u}/v1/blocks/{h}", timeout=10).json()
        seen[u] = (b["hash"], b["header"]["state_root"])
    assert len(set(seen.values())) == 1, f"nodes differ at height {h}: {seen}"
    block_hash, root = next(iter(seen.values()))
    return h, block_hash, root


def check_nothing_lost(net: Devnet, load: Load, urls: list[str]) -> dict[str, int]:
    """Every transaction that any node ever reported committed (during the run or now) is
    committed on every node, at the same height. Returns counts for the report."""
    ids = list(load.submitted)
    final: dict[str, list[dict[str, Any]]] = {u: tx_statuses(u, ids) for u in urls}
    committed_anywhere = set(load.reported)
    for sts in final.values():
        committed_anywhere |= {s["tx_id"] for s in sts if s["status"] == "committed"}
    for u, sts in final.items():
        by_id = {s["tx_id"]: s for s in sts}
        missing = [i for i in committed_anywhere if by_id[i]["status"] != "committed"]
        assert not missing, (f"{u} lacks {len(missing)} transactions another node reported "
                             f"committed, e.g. {missing[:3]} "
                             f"(reported by {[load.reported.get(m) for m in missing[:3]]})")
    heights = {u: {s["tx_id"]: s["height"] for s in sts if s["status"] == "committed"}
               for u, sts in final.items()}
    ref = heights[urls[0]]
    for u in urls[1:]:
        assert heights[u] == ref, f"{u} places committed transactions at other heights"
    for i, (_name, h) in load.reported.items():
        assert ref[i] == h, f"tx {i} was reported at height {h}, now at {ref[i]}"
    return {"submitted": len(ids), "committed": len(committed_anywhere),
            "reported_during_run": len(load.reported)}


def audit_replay_all(net: Devnet, code: Path = REPO) -> list[dict[str, Any]]:
    """Stop every node, then `partledger audit replay` each data directory against the
    devnet's genesis file (with the program in `code`); each must pass."""
    current = Devnet.load(net.dir)
    stop_devnet(current)
    out = []
    for n in current.nodes:
        if not (n.home / "data" / "ledger" / "CURRENT").exists():
            continue
        proc = subprocess.run([sys.executable, "-m", "cli.main", "audit", "replay", "--home",
                               str(n.home), "--genesis", str(n.home / "genesis.json"), "--json"],
                              capture_output=True, text=True, cwd=code, timeout=600,
                              env={**os.environ, "PYTHONPATH": str(code)})
        doc = json.loads(proc.stdout)
        assert proc.returncode == 0 and doc["ok"], (n.name, doc, proc.stderr[-2000:])
        out.append(doc)
    return out


def cleanup(d: Path) -> None:
    """Stop whatever this test's devnet left running (also after a failure)."""
    try:
        stop_devnet(Devnet.load(d), grace_s=5)
    finally:
        for pid in processes_under(d):
            kill_node(pid)


def wait_api(node: DevnetNode, pid: int, *, timeout_s: float) -> dict[str, Any]:
    """Wait until the restarted node `pid` answers on its API."""
    def up() -> dict[str, Any] | None:
        assert is_node_process(pid, node.home), (
            f"{node.name} exited after restart: "
            + (node.home / "node.log").read_text(errors="replace")[-3000:])
        return get_status(node.api)
    doc: dict[str, Any] = wait_until(up, timeout_s=timeout_s, interval_s=0.05,
                                     what=f"{node.name} to serve its API")
    return doc


def live_heights(urls: list[str]) -> Iterator[int]:
    for u in urls:
        s = get_status(u)
        if s is not None:
            yield s["height"]
