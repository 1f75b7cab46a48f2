"""Run every benchmark (what `make bench` runs) and print one summary table.

    python bench/run_all.py                    # full runs, medians of --runs (default 3)
    python bench/run_all.py --smoke            # each benchmark in --smoke mode (CI)
    python bench/run_all.py --only replay sync # a subset
    python bench/run_all.py --json --out /tmp/results.json

Each benchmark runs as its own process with `--json`; its last stdout line is its JSON object.
The benchmarks that use the generated 1M-transaction chain (replay, sync, scale) share its
cache (/tmp/partledger-bench). sync and scale both bind the generated genesis's ports
(127.0.0.1:7100-7103), so everything runs one after the other.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import REPO, emit_json, log, machine

# name -> (script, extra arguments of a full run)
BENCHMARKS: dict[str, tuple[str, list[str]]] = {
    "native": ("bench/native.py", []),
    "provenance": ("bench/provenance.py", []),
    "consortium": ("bench/consortium.py", []),
    "replay": ("bench/replay.py", []),
    "sync": ("bench/sync.py", []),
    "scale": ("bench/scale.py", []),
}
TAKES_RUNS = {"consortium", "replay", "sync", "scale"}


def run_one(name: str, *, smoke: bool, runs: int) -> dict[str, Any]:
    script, extra = BENCHMARKS[name]
    cmd = [sys.executable, str(REPO / script), "--json", *extra]
    if smoke:
        cmd.append("--smoke")
    elif name in TAKES_RUNS:
        cmd += ["--runs", str(runs)]
    log(f"== {name}: {' '.join(cmd[1:])}")
    t0 = time.perf_counter()
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True, cwd=str(REPO),
                         check=False)
    secs = time.perf_counter() - t0
    lines = [ln for ln in out.stdout.splitlines() if ln.strip()]
    if out.returncode != 0 or not lines:
        return {"ok": False, "returncode": out.returncode, "seconds": secs}
    try:
        doc: dict[str, Any] = json.loads(lines[-1])
    except ValueError:
        return {"ok": False, "returncode": out.returncode, "seconds": secs,
                "error": "the last line is not JSON"}
    doc.pop("per_run", None)
    return {"ok": True, "seconds": round(secs, 1), "result": doc}


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []

    def r(name: str) -> dict[str, Any]:
        v = results.get(name, {})
        res: dict[str, Any] = v.get("result", {}) if v.get("ok") else {}
        return res

    c = r("consortium")
    if c:
        rows += [("consortium finalised tx/s / pysyncobj", f"{c['tps']:,.0f} / "
                  f"{c['peer_tps']:,.0f}", f"{c['ratio_peer']:.2f} (target >= 0.3)"),
                 ("consortium / validation ceiling", f"{c['tps']:,.0f} / "
                  f"{c['ceiling_tps']:,.0f}", f"{c['ratio_ceiling']:.2f}"),
                 ("commit latency at 100 tx/s p50 / p99", f"{c['p50_ms']:.0f} / "
                  f"{c['p99_ms']:.0f} ms", "target <= 50 / 250 ms"),
                 ("one validator stopped / fault-free", f"{c['fault_tps']:,.0f} / "
                  f"{c['tps']:,.0f}", f"{c['fault_ratio']:.2f} (target >= 0.8)")]
    p = r("replay")
    if p:
        rows += [("audit replay native / ceiling", f"{p['tps']:,.0f} / {p['ceiling_tps']:,.0f}",
                  f"{p['ratio_ceiling']:.2f} (target >= 2)"),
                 ("audit replay pure Python / ceiling",
                  f"{p['python_tps']:,.0f} / {p['ceiling_tps']:,.0f}",
                  f"{p['python_ratio_ceiling']:.2f}")]
    s = r("sync")
    if s:
        rows.append(("sync of a fresh node, tx/s (blocks/s)",
                     f"{s['tps']:,.0f} ({s['blocks_s']:,.1f})",
                     f"{s['ratio_ceiling']:.2f} of ceiling"))
    k = r("scale")
    if k:
        rows += [("tx/s at 0 / full ledger", f"{k['empty_tps']:,.0f} / {k['full_tps']:,.0f}",
                  f"{k['tps_ratio']:.2f} (target >= 0.8)"),
                 ("RSS max", f"{k['rss_mb']:,.0f} MB", "target < 500 MB")]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), default=None)
    ap.add_argument("--out", default="", help="also write the JSON summary to this file")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    names = a.only or list(BENCHMARKS)
    results = {"machine": machine(), "smoke": a.smoke, "runs": a.runs,
               "benchmarks": {n: run_one(n, smoke=a.smoke, runs=a.runs) for n in names}}
    out = sys.stderr if a.json else sys.stdout
    for name, v in results["benchmarks"].items():
        print(f"{name:<12} {'ok' if v['ok'] else 'FAILED':<7} {v['seconds']:>7.0f} s", file=out)
    for label, value, note in summary_rows(results["benchmarks"]):
        print(f"{label:<40} {value:>24}  {note}", file=out)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(results, indent=2, default=str) + "\n")
    if a.json:
        emit_json(results)
    if not all(v["ok"] for v in results["benchmarks"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
