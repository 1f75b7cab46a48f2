"""A real consortium: 4 validator processes (+ an observer) on loopback, driven through the API.

The tests share one devnet (module fixture) and run in file order: load, crash of the proposer,
a fresh observer, hostile peers, and finally `audit replay` of every node's data directory.
Waits poll the API with deadlines; nothing sleeps for a fixed time to synchronise.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from cli.node._devnet import (
    Devnet,
    create_devnet,
    is_node_process,
    kill_node,
    start_node,
    stop_devnet,
    wait_agreement,
)
from ledger import ConsensusParams, SigningKey, Transaction, read_key_file
from p2p import Member, encode_frame, open_host, peer_id_for, protocol_for
from tests.node_helpers import chunks, commission_tx, processes_under, status, wait_until

CONSENSUS = ConsensusParams(timeout_ms=2000, max_block_txs=1000, block_interval_ms=250)
REPO = Path(__file__).resolve().parents[2]


class Signer:
    """An organisation key with its next nonce (asked from the node once, then counted)."""

    def __init__(self, key: SigningKey, chain: bytes, url: str) -> None:
        self.key, self.chain = key, chain
        self.nonce = httpx.get(f"{url}/v1/nonce/{key.public.hex()}", timeout=10).json()[
            "next_nonce"]
        self.tag = key.public.hex()[:8] + str(time.monotonic_ns())[-8:]

    def make(self, n: int) -> list[Transaction]:
        out = [commission_tx(self.key, self.chain, self.nonce + i, f"{self.tag}n{self.nonce + i}")
               for i in range(n)]
        self.nonce += n
        return out


def post(url: str, txs: list[Transaction]) -> dict[str, Any]:
    r = httpx.post(f"{url}/v1/txs", json={"txs": [t.encode().hex() for t in txs]}, timeout=30)
    assert r.status_code == 202, r.text
    doc: dict[str, Any] = r.json()
    assert doc["accepted"] == len(txs), doc
    return doc


def statuses(url: str, txs: list[Transaction] | list[bytes], wait_ms: int = 0
             ) -> list[dict[str, Any]]:
    ids = [t.tx_id.hex() if isinstance(t, Transaction) else t.hex() for t in txs]
    out: list[dict[str, Any]] = []
    for part in chunks(ids, 5000):
        r = httpx.post(f"{url}/v1/txs/status", json={"tx_ids": part, "wait_ms": wait_ms},
                       timeout=wait_ms / 1000 + 30)
        assert r.status_code == 200, r.text
        out.extend(r.json()["statuses"])
    return out


def metric(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "_total "):
            return float(line.split()[-1])
    raise AssertionError(f"metric {name} not exported")


def converged(urls: list[str]) -> dict[str, Any] | None:
    """All nodes report the same tip (height, hash, state root) right now."""
    sts = [status(u) for u in urls]
    tips = {(s["height"], s["tip_hash"], s["state_root"]) for s in sts}
    return sts[0] if len(tips) == 1 else None


def wait_converged(urls: list[str], timeout_s: float) -> dict[str, Any]:
    doc: dict[str, Any] = wait_until(lambda: converged(urls), timeout_s=timeout_s,
                                     interval_s=0.05, what="the nodes to report the same tip")
    return doc


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    d = tmp_path_factory.mktemp("devnet") / "net"
    devnet = create_devnet(d, nodes=4, observers=1, consensus=CONSENSUS)
    for n in devnet.validators:
        devnet = devnet.with_pid(n.name, start_node(n.home))
    devnet.save()
    try:
        ok, why = wait_agreement(devnet, timeout_s=90,
                                 names=[n.name for n in devnet.validators])
        assert ok, why
        yield devnet
    finally:
        stop_devnet(Devnet.load(d))
        leftovers = processes_under(d)
        for pid in leftovers:  # a node started by a test that failed before recording it
            kill_node(pid)
        assert not leftovers, f"node processes outlived the devnet: {leftovers}"


def _urls(net: Devnet) -> list[str]:
    return [n.api for n in net.validators]


def test_devnet_four_nodes_commit_1000_txs_submitted_to_different_nodes(net: Devnet) -> None:
    urls = _urls(net)
    signers = [Signer(read_key_file(n.org_key), net.chain_id, urls[0]) for n in net.validators]
    per_signer = 250
    t0 = time.monotonic()
    last: list[Transaction] = []
    all_txs: list[Transaction] = []
    for s_i, signer in enumerate(signers):
        txs = signer.make(per_signer)
        all_txs.extend(txs)
        # consecutive batches of one signer go to different nodes: nonce n+50 can reach a
        # node before nonce n does (the mempool keeps it until the gap closes)
        for b_i, batch in enumerate(chunks(txs, 50)):
            post(urls[(s_i + b_i) % len(urls)], batch)
        last.append(txs[-1])
    wait_until(lambda: all(s["status"] == "committed"
                           for s in statuses(urls[0], last, wait_ms=5000)),
               timeout_s=120, what="the last transaction of each signer")
    elapsed = time.monotonic() - t0
    for st in statuses(urls[3], all_txs):
        assert st["status"] == "committed", st
    tip = wait_converged(urls, timeout_s=30)
    print(f"\n1000 txs committed in {elapsed:.1f}s; tip {tip['height']}")
    # every node serves the same block at every height that holds our transactions
    heights = {st["height"] for st in statuses(urls[1], all_txs)}
    for h in sorted(heights)[:3] + sorted(heights)[-3:]:
        hashes = {httpx.get(f"{u}/v1/blocks/{h}", timeout=10).json()["hash"] for u in urls}
        assert len(hashes) == 1
    # block show over the CLI, as scripts use it
    out = subprocess.run([sys.executable, "-m", "cli.main", "block", "show", str(min(heights)),
                          "--node", urls[2], "--json"], capture_output=True, text=True,
                         cwd=REPO, timeout=60, check=True)
    blk = json.loads(out.stdout)
    assert blk["hash"] and blk["header"]["height"] == min(heights)
    assert all(len(t["tx_id"]) == 64 for t in blk["txs"]) and blk["txs"]
    out = subprocess.run([sys.executable, "-m", "cli.main", "status", "--node", urls[1],
                          "--json"], capture_output=True, text=True, cwd=REPO, timeout=60,
                         check=True)
    st = json.loads(out.stdout)
    assert {"height", "tip_hash", "state_root", "peers"} <= set(st) and st["peers"] == 3


def test_devnet_kill_proposer_under_load_then_restart_converges(net: Devnet) -> None:
    urls = _urls(net)
    keys = {read_key_file(n.home / "keys" / "node.key").public.hex(): n for n in net.validators}
    signer = Signer(read_key_file(net.validators[0].org_key), net.chain_id, urls[0])
    targets = list(urls)
    submitted: list[Transaction] = []
    stop, pause, paused = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def load() -> None:
        i = 0
        try:
            while not stop.is_set():
                if pause.is_set():
                    paused.set()
                    time.sleep(0.01)
                    continue
                batch = signer.make(20)
                post(targets[i % len(targets)], batch)
                submitted.extend(batch)
                i += 1
                time.sleep(0.05)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        wait_until(lambda: len(submitted) >= 100, timeout_s=30, what="load to start")
        # pause the client between two batches (so none is in flight to the victim), pick the
        # proposer of the height being decided right now, take it out of the targets, kill it
        pause.set()
        paused.wait(timeout=30)
        s0 = status(urls[0])
        validators = s0["validators"]
        victim = keys[validators[(s0["consensus_height"] + s0["round"]) % len(validators)]]
        targets.remove(victim.api)
        assert victim.pid is not None
        kill_node(victim.pid)
        pause.clear()
        t_kill = time.monotonic()
        assert not is_node_process(victim.pid, victim.home)
        others = [n for n in net.validators if n.name != victim.name]
        other_urls = [n.api for n in others]
        before = max(status(u)["height"] for u in other_urls)
        # the other three keep committing (after a round change away from the dead proposer)
        wait_until(lambda: min(status(u)["height"] for u in other_urls) >= before + 5,
                   timeout_s=60, what="the surviving validators to commit 5 more blocks")
    finally:
        stop.set()
        loader.join(timeout=30)
    assert not errors, errors
    print(f"\n5 blocks after killing the proposer in {time.monotonic() - t_kill:.1f}s; "
          f"{len(submitted)} txs submitted")
    committed_before_restart = [bytes.fromhex(st["tx_id"]) for st in
                                statuses(other_urls[0], submitted)
                                if st["status"] == "committed"]
    assert len(committed_before_restart) >= 100
    pid = start_node(victim.home)
    Devnet.load(net.dir).with_pid(victim.name, pid).save()
    t_restart = time.monotonic()
    tip = wait_converged(urls, timeout_s=90)
    print(f"restarted node converged in {time.monotonic() - t_restart:.1f}s")
    assert tip["height"] >= before + 5
    st = status(victim.api)
    assert st["sync"]["synced_blocks"] >= 1  # it caught up by block sync
    for st in statuses(victim.api, committed_before_restart):
        assert st["status"] == "committed", st
    # everything submitted to the survivors is eventually committed
    for st in statuses(other_urls[1], submitted, wait_ms=30000):
        assert st["status"] == "committed", st


def test_devnet_fresh_observer_syncs_the_whole_chain_verifying_seals(net: Devnet) -> None:
    urls = _urls(net)
    observer = next(n for n in net.nodes if n.observer)
    target = status(urls[0])["height"]
    pid = start_node(observer.home)
    Devnet.load(net.dir).with_pid(observer.name, pid).save()
    st = wait_until(lambda: (s := status(observer.api))["height"] >= target and s,
                    timeout_s=120, what="the observer to sync")
    assert st["role"] == "observer"
    assert st["round"] is None  # observers run no consensus
    # every block it holds came through sync, where each seal is checked against genesis
    assert st["sync"]["synced_blocks"] >= target
    h = st["height"]
    ref = httpx.get(f"{urls[0]}/v1/blocks/{h}", timeout=10).json()["hash"]
    assert httpx.get(f"{observer.api}/v1/blocks/{h}", timeout=10).json()["hash"] == ref
    # and it keeps following
    wait_until(lambda: status(observer.api)["height"] >= h + 2, timeout_s=60,
               what="the observer to follow new blocks")


def test_devnet_refuses_outsiders_and_counts_bad_frames(net: Devnet) -> None:
    target = net.validators[0]
    url = target.api
    node_key = read_key_file(target.home / "keys" / "node.key").public
    addr = target.p2p.split("/p2p/")[0]
    refused0 = metric(url, "partledger_p2p_refused_handshakes")
    oversized0 = metric(url, "partledger_p2p_oversized_frames")
    malformed0 = metric(url, "partledger_p2p_malformed_frames")
    payloads0 = metric(url, "partledger_dropped_malformed_payloads")
    outsider = SigningKey.generate()
    # a member key that no running process uses: the (stopped-or-not) observer's
    member = read_key_file(next(n for n in net.nodes if n.observer).home / "keys" / "node.key")

    async def hostile() -> None:
        from libp2p.peer.peerinfo import PeerInfo
        from multiaddr import Multiaddr

        roster = [Member(public_key=node_key, addrs=(addr,))]
        async with open_host(outsider, roster) as h:
            with pytest.raises(Exception):  # noqa: B017 - libp2p's own error types
                await h._libp2p.connect(PeerInfo(peer_id_for(node_key), [Multiaddr(addr)]))
            assert not h.connected_peers()
        async with open_host(member, roster) as h:
            with trio.fail_after(20):
                await h.wait_connected(node_key)
            s = await h._libp2p.new_stream(peer_id_for(node_key), [protocol_for("consensus")])
            big = 64 * 1024 * 1024
            await s.write(struct.pack(">I", big))
            chunk = b"\0" * (1024 * 1024)
            for _ in range(big // len(chunk)):
                await s.write(chunk)
            await s.write(struct.pack(">I", 3) + b"\xc1\xc1\xc1")
            await s.write(encode_frame([("c", b"not a consensus message")]))
            await s.write(encode_frame([("tip", b"\xff")]))
            t = await h._libp2p.new_stream(peer_id_for(node_key), [protocol_for("tx")])
            await t.write(encode_frame([("txs", b"\x93\x01\x02\x03")]))
            with trio.fail_after(20):
                while metric(url, "partledger_p2p_malformed_frames") < malformed0 + 1:
                    await trio.sleep(0.1)

    trio.run(hostile)
    assert metric(url, "partledger_p2p_refused_handshakes") >= refused0 + 1
    assert metric(url, "partledger_p2p_oversized_frames") >= oversized0 + 1
    assert metric(url, "partledger_p2p_malformed_frames") >= malformed0 + 1
    wait_until(lambda: metric(url, "partledger_dropped_malformed_payloads") >= payloads0 + 2,
               timeout_s=10, what="the bad tip and tx batch to be counted")
    # nothing crashed: the node is up and the consortium still commits
    # (the devnet file has the current pid: an earlier test may have restarted this node)
    assert is_node_process(Devnet.load(net.dir).node(target.name).pid, target.home)
    h0 = status(url)["height"]
    wait_until(lambda: status(url)["height"] >= h0 + 2, timeout_s=60,
               what="commits after the hostile peers")


def test_devnet_audit_replay_accepts_every_data_dir(net: Devnet) -> None:
    current = Devnet.load(net.dir)
    stop_devnet(current)
    for n in current.nodes:
        if not (n.home / "data" / "ledger" / "CURRENT").exists():
            continue
        out = subprocess.run([sys.executable, "-m", "cli.main", "audit", "replay", "--home",
                              str(n.home), "--json"], capture_output=True, text=True, cwd=REPO,
                             timeout=300)
        doc = json.loads(out.stdout)
        assert out.returncode == 0 and doc["ok"], (n.name, doc, out.stderr[-2000:])
        assert doc["height"] >= 10


def test_devnet_whole_consortium_restarts_and_resumes(net: Devnet) -> None:
    """After every node was stopped (previous test), all restart from their stores and
    persisted consensus state and go on committing together."""
    current = Devnet.load(net.dir)
    for n in current.validators:
        current = current.with_pid(n.name, start_node(n.home))
    current.save()
    urls = [n.api for n in current.validators]
    heights = wait_until(lambda: [status(u)["height"] for u in urls], timeout_s=90,
                         what="the APIs to come back")
    target = max(heights) + 3
    wait_until(lambda: min(status(u)["height"] for u in urls) >= target, timeout_s=90,
               what="commits after a full restart")
    hashes = {httpx.get(f"{u}/v1/blocks/{target}", timeout=10).json()["hash"] for u in urls}
    assert len(hashes) == 1
