"""Auditor replay (`partledger audit replay`) on a chain of 1,000,000 transactions, native and
pure Python, beside the single-core pure-Python validation ceiling measured in the same run.

    python bench/replay.py                      # full run; generates the chain once (cached)
    python bench/replay.py --json               # table on stderr, one JSON object last on stdout
    python bench/replay.py --smoke --json       # a 2,000-transaction chain, for CI
    python bench/replay.py --chain-dir DIR      # where the generated chain is cached

The chain comes from `partledger dev generate` (the provenance synthetic workload: lots,
parts, assemblies, custody, passports, attestations; 4 validators; 1,000 transactions per
block) and is kept under `--chain-dir` (default /tmp/partledger-bench/chain-BxT) for later
runs. Replay figures are the replay's own clock (`seconds` in its JSON: decode, links, roots,
signatures, seals, re-execution); the wall time of the command, including start-up and the
final whole-store comparison, is reported beside it. The ceiling is one process, one core,
pure Python: decode, `verify_transactions`, execute, store (a synced batch per block) the
first `--ceiling-txs` transactions of the same chain into a fresh store.
Target (issue 8): native replay >= 2x the ceiling.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    REPO,
    CpuMeter,
    emit_json,
    log,
    machine,
    median,
    ratio,
    ratio_line,
    settle_store,
    validation_ceiling,
)

PARTLEDGER = [sys.executable, "-m", "cli.main"]


def ensure_chain(chain_dir: Path, blocks: int, txs_per_block: int, seed: int = 8, *,
                 base_port: int = 0) -> Path:
    """The node home of a generated chain under `chain_dir`, generating it when absent (under a
    lock, so concurrent runs wait for one generation).

    With `base_port` 0 the chain is exactly what `partledger dev generate --seed SEED` writes
    (validators at 127.0.0.1:7100-7103); otherwise the same generator runs in process with the
    validators' addresses at `base_port`.. (tests use free ports)."""
    import fcntl

    home = chain_dir / "home"
    ready = chain_dir / "ready.json"
    chain_dir.mkdir(parents=True, exist_ok=True)
    with open(chain_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists():
            doc = json.loads(ready.read_text())
            if doc.get("blocks") == blocks and doc.get("txs_per_block") == txs_per_block:
                if not doc.get("settled"):  # cached before chains were settled
                    settle_store(home / "data" / "ledger")
                    ready.write_text(json.dumps({**doc, "settled": True}))
                return home
        if home.exists():
            import shutil

            shutil.rmtree(home)
        log(f"generating {blocks:,} blocks x {txs_per_block:,} transactions in {home} "
            "(once; cached)")
        t0 = time.perf_counter()
        if base_port:
            txs = _generate_in_process(home, blocks, txs_per_block, seed, base_port)
        else:
            out = subprocess.run([*PARTLEDGER, "dev", "generate", "--out", str(home),
                                  "--blocks", str(blocks), "--txs-per-block", str(txs_per_block),
                                  "--seed", str(seed), "--json"], capture_output=True, text=True,
                                 cwd=str(REPO), check=False)
            if out.returncode != 0:
                raise RuntimeError(f"dev generate failed: {out.stderr[-2000:]}")
            txs = json.loads(out.stdout)["txs"]
        seconds = time.perf_counter() - t0
        settle_store(home / "data" / "ledger")
        ready.write_text(json.dumps({"blocks": blocks, "txs_per_block": txs_per_block,
                                     "txs": txs, "seconds": seconds, "settled": True}))
    return home


def _generate_in_process(home: Path, blocks: int, txs_per_block: int, seed: int,
                         base_port: int) -> int:
    """`partledger dev generate`'s steps, with the validators' ports at `base_port`."""
    import random

    from cli.cmd_dev import chunks, synthetic_workload
    from ledger._chain import DevConsortium, build_dev_chain, default_application

    rng = random.Random(seed)
    consortium = DevConsortium.generate(rng, base_port=base_port)
    batches = chunks(synthetic_workload()(rng, consortium, blocks * txs_per_block),
                     txs_per_block, blocks)
    return build_dev_chain(home, consortium, default_application(), batches).txs


def free_port_block(n: int = 4) -> int:
    """A base port with `n` consecutive free ports after it on 127.0.0.1."""
    import random
    import socket

    for _ in range(200):
        base = random.randrange(20_000, 30_000)
        socks = []
        try:
            for i in range(n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no block of free ports found")


def replay(home: Path, *, native: bool) -> dict[str, Any]:
    env = {**os.environ, "PARTLEDGER_NATIVE": "1" if native else "0"}
    meter = CpuMeter()
    t0 = time.perf_counter()
    out = subprocess.run([*PARTLEDGER, "audit", "replay", "--home", str(home), "--json"],
                         capture_output=True, text=True, env=env, cwd=str(REPO), check=False)
    wall = time.perf_counter() - t0
    load = meter.stop()
    if out.returncode != 0:
        raise RuntimeError(f"audit replay failed ({out.returncode}): {out.stdout[-500:]} "
                           f"{out.stderr[-1500:]}")
    doc = json.loads(out.stdout)
    cpu_s = load["our_cores"] * wall  # the replay process's CPU time, start-up included
    return {"txs": doc["txs"], "blocks": doc["blocks"], "seconds": doc["seconds"],
            "wall_s": round(wall, 2), "tps": doc["txs"] / doc["seconds"],
            "wall_tps": doc["txs"] / wall, "cpu_s": round(cpu_s, 2),
            "tps_per_cpu_second": doc["txs"] / cpu_s if cpu_s else None, **load}


def run_once(home: Path, a: argparse.Namespace) -> dict[str, Any]:
    res: dict[str, Any] = {"machine": machine()}
    genesis = home / "genesis.json"
    ledger = home / "data" / "ledger"
    log("ceiling: pure Python, one process")
    res["ceiling"] = validation_ceiling(ledger, genesis, max_txs=a.ceiling_txs)
    log(f"  {res['ceiling']['tps']:,.0f} tx/s over {res['ceiling']['txs']:,} txs")
    log("replay, native backend")
    res["native"] = replay(home, native=True)
    log(f"  {res['native']['tps']:,.0f} tx/s ({res['native']['txs']:,} txs, "
        f"{res['native']['seconds']:.1f} s; foreign {res['native']['foreign_cores']} cores)")
    if not a.skip_python:
        log("replay, pure Python (PARTLEDGER_NATIVE=0)")
        res["python"] = replay(home, native=False)
        log(f"  {res['python']['tps']:,.0f} tx/s ({res['python']['seconds']:.1f} s)")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chain-dir", default="")
    ap.add_argument("--home", default="", help="replay this existing node home instead (the "
                    "node must be stopped)")
    ap.add_argument("--blocks", type=int, default=1000)
    ap.add_argument("--txs-per-block", type=int, default=1000)
    ap.add_argument("--ceiling-txs", type=int, default=50_000)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--skip-python", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.smoke:
        a.blocks, a.txs_per_block, a.ceiling_txs, a.runs = 20, 100, 1000, 1
    chain_dir = Path(a.chain_dir or f"/tmp/partledger-bench/chain-{a.blocks}x{a.txs_per_block}")
    home = Path(a.home) if a.home else ensure_chain(
        chain_dir, a.blocks, a.txs_per_block,
        base_port=free_port_block() if a.smoke and a.chain_dir else 0)
    runs = [run_once(home, a) for _ in range(a.runs)]
    tps = median(r["native"]["tps"] for r in runs)
    ceiling = median(r["ceiling"]["tps"] for r in runs)
    py = median(r["python"]["tps"] for r in runs if "python" in r)
    s = {"benchmark": "replay", "runs": len(runs), "smoke": a.smoke,
         "txs": runs[0]["native"]["txs"], "tps": tps, "python_tps": py, "ceiling_tps": ceiling,
         "ratio_ceiling": ratio(tps, ceiling), "python_ratio_ceiling": ratio(py, ceiling),
         "foreign_cores": median(r["native"]["foreign_cores"] for r in runs),
         # on a machine whose cores are busy with other work, CPU time is the fairer clock:
         "cpu_ratio_ceiling": median(
             r["native"]["tps_per_cpu_second"] / r["ceiling"]["tps_per_cpu_second"]
             for r in runs if r["native"]["tps_per_cpu_second"]),
         "chain_dir": str(chain_dir), "per_run": runs}
    out = sys.stderr if a.json else sys.stdout
    print(f"audit replay of {s['txs']:,} transactions, {len(runs)} run(s), medians; foreign load "
          f"{s['foreign_cores']} cores", file=out)
    print(ratio_line("replay, native (both cores)", tps, ceiling, unit="tx/s",
                     base_name="ceiling"), file=out)
    print(ratio_line("replay, pure Python", py, ceiling, unit="tx/s", base_name="ceiling"),
          file=out)
    if a.json:
        emit_json(s)


if __name__ == "__main__":
    main()
