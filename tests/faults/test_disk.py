"""Disk faults under a real node process: damaged LevelDB files, a full disk, a data directory
of another chain. The node must refuse to start (or stop) with a clear one-line reason, and
never serve or sign anything inconsistent: whenever it does run on a damaged store, every block
it serves must check out against the genesis file, and `audit replay` must accept the store.

One-validator devnets (a quorum of one commits alone) keep this cheap.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.node._devnet import Devnet, create_devnet, is_node_process, kill_node, stop_node
from ledger import ConsensusParams, Genesis, Seal, read_key_file, verify_seal
from tests.faults._harness import cleanup, get_status, processes_under, snapshot_code
from tests.node_helpers import signed_txs, wait_until

CONSENSUS = ConsensusParams(timeout_ms=1000, max_block_txs=500, block_interval_ms=50)


def _outcome(code: Path, home: Path, *, timeout_s: float = 60) -> tuple[str, Any]:
    """Start the node; ('exited', (exit code, last output line)) or ('running', (pid, status))."""
    log = home / "node.log"
    before = log.stat().st_size if log.exists() else 0
    with open(log, "ab") as out:
        proc = subprocess.Popen(  # start_from's command, keeping the Popen for the exit code
            [sys.executable, "-m", "cli.main", "node", "start", "--home", str(home)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
            cwd=code, env={**os.environ, "PYTHONPATH": str(code)})
    api = _api(home)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rc = proc.poll()
        if rc is not None:
            text = log.read_bytes()[before:].decode(errors="replace").strip()
            return "exited", (rc, text.splitlines()[-1] if text else "")
        s = get_status(api)
        if s is not None:
            return "running", (proc.pid, s)
        time.sleep(0.05)
    raise AssertionError(f"the node neither started nor exited in {timeout_s}s")


def _clear_refusal(rc: int, line: str) -> str:
    """A refusal is a non-zero exit whose last output line is one sentence: the CLI's
    `error: ...` or a JSON log record at error level; never a traceback."""
    assert rc != 0, f"the node exited 0 on a refusal: {line}"
    assert "Traceback" not in line and line, f"no clear reason: {line!r}"
    if line.startswith("error: "):
        return line
    doc = json.loads(line)
    assert doc["level"] in ("error", "critical"), doc
    assert len(doc["msg"]) < 600
    return str(doc["msg"])


def _api(home: Path) -> str:
    import tomllib

    cfg = tomllib.loads((home / "config.toml").read_text())
    return f"http://{cfg['api']['listen']}"


def _submit(home: Path, chain: bytes, n: int, nonce: int) -> None:
    key = read_key_file(home / "keys" / "org.key")
    txs = signed_txs(key, chain, n, first_nonce=nonce)
    r = httpx.post(f"{_api(home)}/v1/txs", json={"txs": [t.encode().hex() for t in txs]},
                   timeout=30)
    assert r.status_code == 202, r.text


def _served_chain_checks_out(home: Path) -> int:
    """Every block the running node serves links to its parent and carries a valid seal."""
    genesis = Genesis.load(home / "genesis.json")
    api = _api(home)
    s = get_status(api, timeout_s=10)
    assert s is not None
    prev = genesis.chain_id.hex()
    for h in range(1, s["height"] + 1):
        r = httpx.get(f"{api}/v1/blocks/{h}", timeout=10)
        assert r.status_code == 200, (h, r.text)
        b = r.json()
        assert b["header"]["prev_hash"] == prev, f"block {h} does not link to {h - 1}"
        seal = b["seal"]
        verify_seal(Seal(height=seal["height"], round=seal["round"],
                         block_hash=bytes.fromhex(seal["block_hash"]),
                         votes=tuple((bytes.fromhex(v["validator"]), bytes.fromhex(v["signature"]))
                                     for v in seal["votes"])),
                    chain=genesis.chain_id, block_hash=bytes.fromhex(b["hash"]), height=h,
                    validators=genesis.validators)
        prev = b["hash"]
    return int(s["height"])


def _audit(code: Path, home: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "cli.main", "audit", "replay", "--home", str(home),
                           "--json"], capture_output=True, text=True, cwd=code, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(code)})
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return snapshot_code(tmp_path_factory.mktemp("code"))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, code: Path) -> Iterator[Devnet]:
    """A one-node chain with 300 transactions in a few blocks, stopped with SIGTERM; each
    test damages its own copy."""
    d = tmp_path_factory.mktemp("pristine") / "net"
    net = create_devnet(d, nodes=1, consensus=CONSENSUS)
    home = net.validators[0].home
    try:
        kind, (pid, _s) = _outcome(code, home)
        assert kind == "running"
        for i in range(6):
            _submit(home, net.chain_id, 50, 50 * i)
        wait_until(lambda: (s := get_status(_api(home))) and s["mempool"] == 0
                   and s["height"] >= 6, timeout_s=60, what="the transactions to commit")
        assert stop_node(pid, home)
        yield net
    finally:
        cleanup(d)


@pytest.fixture
def chain(pristine: Devnet, tmp_path: Path) -> Iterator[tuple[Devnet, Path]]:
    """A private copy of the pristine chain (same ports: tests in this module run one node at
    a time)."""
    home = tmp_path / "home"
    shutil.copytree(pristine.validators[0].home, home)
    yield pristine, home
    for pid in processes_under(home):
        kill_node(pid)


def _ldb_files(ldir: Path) -> list[Path]:
    return sorted(ldir.glob("*.ldb")) + sorted(ldir.glob("*.log"))


def _damage_cases() -> list[str]:
    """Damage to the main database, and ("bodies_...") to the block bodies' database."""
    return ["truncate_log", "truncate_table", "flip_table", "flip_log", "drop_current",
            "drop_manifest", "garbage_current", "bodies_flip_table", "bodies_truncate_log",
            "bodies_drop_current"]


@pytest.mark.parametrize("case", _damage_cases())
def test_disk_damaged_store_refused_or_served_consistently(case: str, chain: tuple[Devnet, Path],
                                                           code: Path) -> None:
    _net, home = chain
    ldir = home / "data" / "ledger"
    rng = random.Random(case)
    if case.startswith("bodies_"):
        from ledger._store import BODIES_DIR

        ldir, case = ldir / BODIES_DIR, case.removeprefix("bodies_")
    if case.endswith("_table"):  # move everything from the write-ahead log into a table file
        import plyvel

        db = plyvel.DB(str(ldir))
        db.compact_range()
        db.close()
        assert list(ldir.glob("*.ldb")), "compaction wrote no table file"
    files = {p.suffix: p for p in _ldb_files(ldir)}
    if case.endswith("_table"):
        target = files.get(".ldb") or files[".log"]
    elif case.endswith("_log"):
        target = files.get(".log") or files[".ldb"]
    elif case == "drop_manifest":
        target = next(ldir.glob("MANIFEST-*"))
    else:
        target = ldir / "CURRENT"
    data = target.read_bytes()
    if case.startswith("truncate"):
        target.write_bytes(data[: len(data) // 2])
    elif case.startswith("flip"):
        buf = bytearray(data)
        for _ in range(max(1, len(buf) // 200)):
            buf[rng.randrange(len(buf))] ^= 0xFF
        target.write_bytes(bytes(buf))
    elif case.startswith("drop"):
        target.unlink()
    else:
        target.write_bytes(b"MANIFEST-999999\n")
    kind, what = _outcome(code, home)
    if kind == "exited":
        why = _clear_refusal(*what)
        print(f"\n{case} ({target.name}): refused: {why[:300]}")
        # damage is named as damage (a flipped byte once read back as "another chain")
        assert "belongs to chain" not in why, why
        return
    pid, status = what
    try:
        height = _served_chain_checks_out(home)
    finally:
        stop_node(pid, home)
    report = _audit(code, home)
    print(f"\n{case} ({target.name}): started at height {status['height']}, served "
          f"{height} blocks that check out; audit replay ok={report.get('ok')}")
    assert report.get("ok"), f"the node ran on a store audit replay rejects: {report}"


def test_disk_data_dir_of_another_chain_refused(chain: tuple[Devnet, Path], code: Path,
                                               tmp_path: Path) -> None:
    _net, home = chain
    other = create_devnet(tmp_path / "other", nodes=1, consensus=CONSENSUS)
    ohome = other.validators[0].home
    try:
        kind, (pid, _s) = _outcome(code, ohome)
        assert kind == "running"
        wait_until(lambda: (s := get_status(_api(ohome))) and s["height"] >= 2, timeout_s=60,
                   what="the other chain to commit")
        stop_node(pid, ohome)
    finally:
        cleanup(tmp_path / "other")
    shutil.rmtree(home / "data")
    shutil.copytree(ohome / "data", home / "data")
    kind, what = _outcome(code, home)
    assert kind == "exited", "the node started on another chain's data directory"
    why = _clear_refusal(*what)
    print(f"\nanother chain's data dir: {why}")
    assert "belongs to chain" in why


def test_disk_full_stops_cleanly_and_restarts_consistent(tmp_path: Path, code: Path) -> None:
    """The home lives on a 6 MiB tmpfs; the node runs under load until the disk is full, then
    the tmpfs grows and the node must restart on a store that replays, holding everything it
    ever reported committed."""
    if os.geteuid() != 0:
        raise AssertionError("the full-disk test mounts a tmpfs: run it as root (CI does)")
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m,mode=0700", "tmpfs", str(mnt)],
                   check=True)
    try:
        net = create_devnet(mnt / "net", nodes=1, consensus=CONSENSUS)
        home = net.validators[0].home
        api = _api(home)
        reported: dict[str, int] = {}
        kind, (pid, _s) = _outcome(code, home)
        assert kind == "running"
        nonce, full_at = 0, None
        key = read_key_file(home / "keys" / "org.key")
        deadline = time.monotonic() + 240
        while full_at is None:
            assert time.monotonic() < deadline, "the 6 MiB disk never filled up"
            if not is_node_process(pid, home):
                full_at = "exited"
                break
            txs = signed_txs(key, net.chain_id, 100, first_nonce=nonce)
            try:
                r = httpx.post(f"{api}/v1/txs", json={"txs": [t.encode().hex() for t in txs]},
                               timeout=10)
                if r.status_code == 202:
                    nonce += 100
                sts = httpx.post(f"{api}/v1/txs/status", json={
                    "tx_ids": [t.tx_id.hex() for t in txs], "wait_ms": 2000}, timeout=10).json()
            except httpx.HTTPError:
                continue
            for st in sts["statuses"]:
                if st["status"] == "committed":
                    reported[st["tx_id"]] = st["height"]
            if shutil.disk_usage(mnt).free < 64 * 1024 and nonce > 0:
                s = get_status(api)
                h0 = s["height"] if s else -1
                time.sleep(3)  # a window: does it still claim commits on a full disk?
                s = get_status(api)
                if s is None or s["height"] == h0:
                    full_at = "stalled" if s is not None else "exited"
        log = (home / "node.log").read_text(errors="replace")
        (tmp_path / "full-disk-node.log").write_text(log)  # kept after the tmpfs is gone
        last = log.strip().splitlines()[-1]
        print(f"\nfull disk: node {full_at} after {len(reported)} committed txs; last log: "
              f"{last[:300]}")
        # it stops with one sentence (and a critical log record), not a traceback
        assert full_at == "exited", "the node kept running on a full disk"
        assert last.startswith("error: ") and "No space left on device" in last, last
        assert '"level":"critical"' in log and "node stopped: " in log
        assert "Traceback" not in log
        stop_node(pid, home, grace_s=5)
        subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)
        kind, what = _outcome(code, home)
        assert kind == "running", f"after the disk was enlarged the node does not start: {what}"
        pid, st = what
        try:
            _served_chain_checks_out(home)
            ids = list(reported)
            got = httpx.post(f"{api}/v1/txs/status", json={"tx_ids": ids}, timeout=30).json()
            lost = [s for s in got["statuses"] if s["status"] != "committed"]
            assert not lost, f"{len(lost)} reported-committed txs lost after the full disk"
        finally:
            stop_node(pid, home)
        report = _audit(code, home)
        assert report.get("ok"), report
    finally:
        cleanup(mnt / "net")
        subprocess.run(["umount", "-l", str(mnt)], check=False)
