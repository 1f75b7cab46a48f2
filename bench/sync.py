"""Sync: a fresh node (empty data directory) catches up a chain of 1,000,000 transactions from a
peer that serves it, beside the single-core pure-Python validation ceiling of the same run.

    python bench/sync.py                 # full run (chain from bench/replay.py's cache)
    python bench/sync.py --json          # table on stderr, one JSON object last on stdout
    python bench/sync.py --smoke --json  # a 2,000-transaction chain, for CI

The chain is the one `bench/replay.py` generates and caches (`--chain-dir`). Its genesis names
4 validators at 127.0.0.1:7100-7103: member 0's node serves the stored chain from that home
(with 2 of 4 validators up there is no quorum, so the chain does not grow), and member 1's node
starts on a fresh home (same genesis, its own keys, no data) and syncs: it fetches blocks with
their seals by height range, checks each seal against the genesis validators, validates and
executes each block and stores it. Figures: blocks/s and tx/s from the fresh node's start to its
reaching the served tip (start-up included), and the RSS of both nodes at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    CpuMeter,
    anon_rss_mb,
    emit_json,
    log,
    machine,
    median,
    ratio,
    ratio_line,
    rss_mb,
    validation_ceiling,
)
from bench.replay import ensure_chain, free_port_block


def _config(home: Path, listen: str) -> None:
    from cli.node._config import ApiSection, NodeConfig, NodeSection, P2PSection
    from cli.node._devnet import free_ports

    cfg = NodeConfig.default()
    cfg = cfg.with_(node=NodeSection(name=home.name, log_level="warning"),
                    p2p=P2PSection(listen=listen),
                    api=ApiSection(listen=f"127.0.0.1:{free_ports(1)[0]}"))
    cfg.save(home / "config.toml")


def _api(home: Path) -> str:
    from cli.node._config import NodeConfig

    return f"http://{NodeConfig.load(home / 'config.toml').api.listen}"


def _exited(pid: int) -> bool:
    """True once our child `pid` has exited (reaps it); a child that has not exec'd the node
    yet still counts as running."""
    try:
        done, _status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return not Path(f"/proc/{pid}").exists()
    return done != 0


def _wait_api(url: str, pid: int, home: Path, timeout_s: float) -> dict[str, Any]:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _exited(pid):
            tail = (home / "node.log").read_text(errors="replace")[-1500:]
            raise RuntimeError(f"node {home} exited; its log ends: {tail}")
        try:
            doc: dict[str, Any] = httpx.get(f"{url}/v1/status", timeout=5).json()
            return doc
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"node {home} did not answer in {timeout_s} s")


def prepare_server(chain_home: Path) -> None:
    """Member 0's home (the generated chain) gets a config listening at its genesis address."""
    from ledger import Genesis

    g = Genesis.load(chain_home / "genesis.json")
    _config(chain_home, g.members[0].addresses[0])


def fresh_home(chain_home: Path, root: Path, index: int) -> Path:
    """A new home for member `index` of the generated chain: genesis and keys, no data."""
    from ledger import Genesis, Home, read_key_file, write_key_file

    g = Genesis.load(chain_home / "genesis.json")
    m = g.members[index]
    home = Home.at(root / m.name)
    home.create_dirs()
    g.save(home.genesis_path)
    src = chain_home / "consortium" / m.name
    write_key_file(home.org_key_path, read_key_file(src / "org.key"), label="org")
    write_key_file(home.node_key_path, read_key_file(src / "node.key"), label="node")
    _config(home.root, m.addresses[0])
    return home.root


def run_once(chain_home: Path, a: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from cli.node._devnet import start_node, stop_node

    res: dict[str, Any] = {"machine": machine()}
    root = Path(tempfile.mkdtemp(prefix="pl-sync-"))
    prepare_server(chain_home)
    server_pid = start_node(chain_home)
    pid = 0
    fresh = root / "none"
    try:
        st = _wait_api(_api(chain_home), server_pid, chain_home, 120)
        target, total_txs = st["height"], a.total_txs
        fresh = fresh_home(chain_home, root, 1)
        url = _api(fresh)
        meter = CpuMeter([server_pid])
        t0 = time.monotonic()
        pid = start_node(fresh)
        meter.add([pid])
        _wait_api(url, pid, fresh, 120)
        t_api = time.monotonic() - t0
        height, last_log = 0, t0
        rss_peak = anon_peak = 0.0
        while height < target:
            time.sleep(0.5)
            height = httpx.get(f"{url}/v1/status", timeout=30).json()["height"]
            rss_peak = max(rss_peak, rss_mb(pid))
            anon_peak = max(anon_peak, anon_rss_mb(pid))
            if time.monotonic() - last_log > 15:
                last_log = time.monotonic()
                log(f"  synced {height:,} / {target:,} blocks")
            if time.monotonic() - t0 > a.timeout:
                raise RuntimeError(f"sync did not finish in {a.timeout} s ({height}/{target})")
        secs = time.monotonic() - t0
        load = meter.stop()
        res.update({"blocks": target, "txs": total_txs, "seconds": round(secs, 2),
                    "startup_s": round(t_api, 2), "blocks_s": target / secs,
                    "tps": total_txs / secs, "rss_mb": round(rss_mb(pid), 1),
                    "rss_peak_mb": round(rss_peak, 1), "anon_rss_peak_mb": round(anon_peak, 1),
                    "server_rss_mb": round(rss_mb(server_pid), 1), **load})
    finally:
        if pid:
            stop_node(pid, fresh, grace_s=15)
        stop_node(server_pid, chain_home, grace_s=15)
        shutil.rmtree(root, ignore_errors=True)
    log(f"  {res['blocks_s']:,.1f} blocks/s, {res['tps']:,.0f} tx/s "
        f"({res['seconds']:.1f} s; foreign {res['foreign_cores']} cores)")
    log("ceiling: pure Python, one process")
    res["ceiling"] = validation_ceiling(chain_home / "data" / "ledger",
                                        chain_home / "genesis.json", max_txs=a.ceiling_txs)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chain-dir", default="")
    ap.add_argument("--blocks", type=int, default=1000)
    ap.add_argument("--txs-per-block", type=int, default=1000)
    ap.add_argument("--ceiling-txs", type=int, default=50_000)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.smoke:
        a.blocks, a.txs_per_block, a.ceiling_txs, a.runs = 20, 100, 1000, 1
    chain_dir = Path(a.chain_dir or f"/tmp/partledger-bench/chain-{a.blocks}x{a.txs_per_block}")
    home = ensure_chain(chain_dir, a.blocks, a.txs_per_block,
                        base_port=free_port_block() if a.smoke and a.chain_dir else 0)
    a.total_txs = a.blocks * a.txs_per_block
    runs = [run_once(home, a) for _ in range(a.runs)]
    tps = median(r["tps"] for r in runs)
    ceiling = median(r["ceiling"]["tps"] for r in runs)
    s = {"benchmark": "sync", "runs": len(runs), "smoke": a.smoke, "txs": a.total_txs,
         "blocks": a.blocks, "tps": tps, "blocks_s": median(r["blocks_s"] for r in runs),
         "ceiling_tps": ceiling, "ratio_ceiling": ratio(tps, ceiling),
         "rss_mb": max(r["rss_peak_mb"] for r in runs),
         "anon_rss_mb": max(r["anon_rss_peak_mb"] for r in runs),
         "foreign_cores": median(r["foreign_cores"] for r in runs), "per_run": runs}
    out = sys.stderr if a.json else sys.stdout
    print(f"sync of {a.total_txs:,} transactions ({a.blocks:,} blocks) by a fresh node, "
          f"{len(runs)} run(s), medians; foreign load {s['foreign_cores']} cores", file=out)
    print(ratio_line("sync tx/s", tps, ceiling, unit="tx/s", base_name="ceiling"), file=out)
    print(f"{'sync blocks/s':<34} {s['blocks_s']:>12,.1f}", file=out)
    print(f"{'fresh node RSS (peak)':<34} {s['rss_mb']:>12,.0f} MB", file=out)
    print(f"{'  of it anonymous (peak)':<34} {s['anon_rss_mb']:>12,.0f} MB  (the rest: mapped "
          "LevelDB tables, page cache)", file=out)
    if a.json:
        emit_json(s)


if __name__ == "__main__":
    main()
