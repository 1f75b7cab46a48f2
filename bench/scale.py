"""Scale with ledger size: throughput, latency and node memory of a 4-validator consortium whose
ledger already holds 0 and 1,000,000 transactions (5,000,000 in the documented long run).

    python bench/scale.py                      # 0 and 1M (chain from bench/replay.py's cache)
    python bench/scale.py --json               # table on stderr, one JSON object last on stdout
    python bench/scale.py --smoke --json       # 0 and 2,000, for CI
    python bench/scale.py --blocks 5000        # the long run: 0 and 5M (generates that chain)

Both consortia use the genesis of the chain `partledger dev generate --seed 8` writes (the
same keys, validators at 127.0.0.1:7100-7103, its consensus parameters: 500 ms block interval,
2,000 tx per block): for "0" an empty chain of that genesis, for "1M" the cached 1M chain.
Each validator runs on its own copy of the store. The load is bench/consortium.py's (fresh
agents registered first, pre-signed EPCIS events, open loop): saturation throughput over
`--duration` s and commit latency at 100 tx/s; node RSS after each. Target (issue 8): no figure
degrades by more than 20% from 0 to 1M, RSS under 500 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import EventSource, emit_json, log, machine, median, rss_mb
from bench.consortium import phase, setup_agents
from bench.replay import ensure_chain, free_port_block
from bench.sync import _api, _config, _wait_api


def _homes(chain_home: Path, root: Path) -> list[Path]:
    """A home per member of the generated chain, each with its own copy of the store."""
    from ledger import Genesis, Home, read_key_file, write_key_file

    g = Genesis.load(chain_home / "genesis.json")
    out = []
    for m in g.members:
        home = Home.at(root / m.name)
        home.create_dirs()
        g.save(home.genesis_path)
        src = chain_home / "consortium" / m.name
        write_key_file(home.org_key_path, read_key_file(src / "org.key"), label="org")
        write_key_file(home.node_key_path, read_key_file(src / "node.key"), label="node")
        shutil.copytree(chain_home / "data" / "ledger", home.ledger_dir)
        _config(home.root, m.addresses[0])
        out.append(home.root)
    # the copies (4 x 1.7 GB for 1M) are written back before the nodes start, not while the
    # first phase measures their fsyncs
    os.sync()
    return out


def run_case(chain_home: Path, a: argparse.Namespace, label: str, seed: int) -> dict[str, Any]:
    from cli.node._devnet import start_node, stop_node
    from ledger import Genesis, read_key_file

    root = Path(tempfile.mkdtemp(prefix=f"pl-scale-{label}-"))
    log(f"[{label}] copying the store for 4 validators")
    homes = _homes(chain_home, root)
    g = Genesis.load(chain_home / "genesis.json")
    pids = [start_node(h) for h in homes]
    res: dict[str, Any] = {"label": label, "machine": machine()}
    try:
        urls = [_api(h) for h in homes]
        for u, p, h in zip(urls, pids, homes, strict=True):
            _wait_api(u, p, h, 180)
        res["rss_idle_mb"] = {h.name: round(rss_mb(p), 1) for h, p in zip(homes, pids,
                                                                         strict=True)}
        res["height_start"] = _status_height(urls[0])
        org_keys = [read_key_file(chain_home / "consortium" / m.name / "org.key")
                    for m in g.members]
        log(f"[{label}] registering agents")
        agents = setup_agents(urls[0], org_keys, seed, a.agents_per_org)
        src = EventSource(g.chain_id, agents, tag=f"s{label}{int(time.time())}")
        res["light"] = phase(src, urls=urls, pids=pids, rate=a.light_rate, warmup_s=2,
                             duration_s=a.light_duration, tick_s=0.01, pause_mempool=0,
                             name=f"{label} light")
        res["saturation"] = phase(src, urls=urls, pids=pids, rate=a.rate, warmup_s=a.warmup,
                                  duration_s=a.duration, tick_s=0.02,
                                  pause_mempool=a.pause_mempool, name=f"{label} saturation",
                                  profile_dir=Path(a.profile) if a.profile else None)
        res["rss_mb"] = {h.name: round(rss_mb(p), 1) for h, p in zip(homes, pids, strict=True)}
    finally:
        for p in pids:  # all at once, then wait for each
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGTERM)
        for h, p in zip(homes, pids, strict=True):
            stop_node(p, h, grace_s=15)
        shutil.rmtree(root, ignore_errors=True)
    return res


def _status_height(url: str) -> int:
    import httpx

    return int(httpx.get(f"{url}/v1/status", timeout=10).json()["height"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chain-dir", default="")
    ap.add_argument("--blocks", type=int, default=1000)
    ap.add_argument("--txs-per-block", type=int, default=1000)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--rate", type=float, default=8000.0)  # saturating: see bench/consortium.py
    ap.add_argument("--pause-mempool", type=int, default=8000)
    ap.add_argument("--light-rate", type=float, default=100.0)
    ap.add_argument("--light-duration", type=float, default=15.0)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--agents-per-org", type=int, default=32)
    ap.add_argument("--profile", default="", help="py-spy folded stacks of each node during "
                    "each saturation phase go to this directory")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.smoke:
        a.blocks, a.txs_per_block, a.runs, a.agents_per_org = 20, 100, 1, 2
        a.duration, a.warmup, a.rate, a.light_duration = 2.0, 0.5, 200.0, 1.0
    big_dir = Path(a.chain_dir or f"/tmp/partledger-bench/chain-{a.blocks}x{a.txs_per_block}")
    # the empty chain must have the big one's genesis (same seed, same ports)
    port = free_port_block() if a.smoke and a.chain_dir else 0
    big = ensure_chain(big_dir, a.blocks, a.txs_per_block, base_port=port)
    empty_dir = (big_dir.parent / f"{big_dir.name}-empty" if a.chain_dir
                 else Path(f"/tmp/partledger-bench/chain-0x{a.txs_per_block}"))
    from ledger import Genesis

    port = int(Genesis.load(big / "genesis.json").members[0].addresses[0].rsplit("/", 1)[1])
    empty = ensure_chain(empty_dir, 0, a.txs_per_block, base_port=0 if port == 7100 else port)
    size = a.blocks * a.txs_per_block
    runs = []
    for i in range(a.runs):
        runs.append({"0": run_case(empty, a, "0", seed=100 + i),
                     str(size): run_case(big, a, str(size), seed=200 + i)})

    def med(case: str, *path: str) -> float:
        vals = []
        for r in runs:
            v: Any = r[case]
            for k in path:
                v = v[k]
            vals.append(float(v))
        return median(vals)

    big_k = str(size)
    s: dict[str, Any] = {"benchmark": "scale", "runs": len(runs), "smoke": a.smoke,
                         "sizes": [0, size], "per_run": runs}
    for k, name in (("0", "empty"), (big_k, "full")):
        s[f"{name}_tps"] = med(k, "saturation", "tps")
        s[f"{name}_p50_ms"] = med(k, "light", "p50_ms")
        s[f"{name}_p99_ms"] = med(k, "light", "p99_ms")
        s[f"{name}_rss_mb"] = max(max(r[k]["rss_mb"].values()) for r in runs)
    s["tps_ratio"] = s["full_tps"] / s["empty_tps"] if s["empty_tps"] else float("nan")
    s["p50_ratio"] = s["full_p50_ms"] / s["empty_p50_ms"] if s["empty_p50_ms"] else float("nan")
    s["p99_ratio"] = s["full_p99_ms"] / s["empty_p99_ms"] if s["empty_p99_ms"] else float("nan")
    s["tps"] = s["full_tps"]
    s["rss_mb"] = max(s["empty_rss_mb"], s["full_rss_mb"])
    out = sys.stderr if a.json else sys.stdout
    print(f"scale: 4 validators, ledgers of 0 and {size:,} transactions, {len(runs)} run(s)",
          file=out)
    print(f"{'':<28}{'0':>12}{size:>14,}{'ratio':>8}", file=out)
    print(f"{'finalised tx/s':<28}{s['empty_tps']:>12,.0f}{s['full_tps']:>14,.0f}"
          f"{s['tps_ratio']:>8.2f}", file=out)
    print(f"{'p50 ms at 100 tx/s':<28}{s['empty_p50_ms']:>12,.1f}{s['full_p50_ms']:>14,.1f}"
          f"{s['p50_ratio']:>8.2f}", file=out)
    print(f"{'p99 ms at 100 tx/s':<28}{s['empty_p99_ms']:>12,.1f}{s['full_p99_ms']:>14,.1f}"
          f"{s['p99_ratio']:>8.2f}", file=out)
    print(f"{'node RSS, MB (max)':<28}{s['empty_rss_mb']:>12,.0f}{s['full_rss_mb']:>14,.0f}",
          file=out)
    if a.json:
        emit_json(s)


if __name__ == "__main__":
    main()
