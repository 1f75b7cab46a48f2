"""Each of issue 8's benchmarks runs in `--smoke` mode as a real subprocess and prints, last on
stdout, one JSON object with the keys the issue names. Speed is not checked here (CI machines
vary): only that the benchmark machinery (devnets, load generator, peer, ceiling, replay, sync)
still works end to end. Three groups run at the same time (consortium; replay then sync on one
chain; scale on another), so the whole module stays within about three minutes.

The chains are generated per session under tmp_path with validators on free ports (the
cached full-size chain uses the fixed ports of `partledger dev generate`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 170


def _run(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, *args, "--smoke", "--json"], cwd=str(REPO),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"{proc.args!r} took over {TIMEOUT_S} s; stderr ends: {err[-2000:]}")
    assert proc.returncode == 0, f"{proc.args!r} exited {proc.returncode}: {err[-3000:]}"
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert lines, f"no output; stderr: {err[-2000:]}"
    doc: dict[str, Any] = json.loads(lines[-1])
    assert doc.get("smoke") is True
    return doc


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


@pytest.fixture(scope="module")
def consortium() -> Iterator[subprocess.Popen[str]]:
    proc = _run(["bench/consortium.py"])
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def chain_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bench-chain")


@pytest.fixture(scope="module")
def scale(consortium: subprocess.Popen[str], tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[subprocess.Popen[str]]:
    proc = _run(["bench/scale.py", "--chain-dir", str(tmp_path_factory.mktemp("scale-chain"))])
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


def test_replay_smoke(consortium: subprocess.Popen[str], scale: subprocess.Popen[str],
                      chain_dir: Path) -> None:
    doc = _result(_run(["bench/replay.py", "--chain-dir", str(chain_dir)]))
    assert doc["txs"] == 2000
    for key in ("tps", "ceiling_tps", "python_tps", "ratio_ceiling"):
        assert _number(doc[key]) and doc[key] > 0, key


def test_sync_smoke(chain_dir: Path) -> None:
    doc = _result(_run(["bench/sync.py", "--chain-dir", str(chain_dir)]))
    assert doc["txs"] == 2000 and doc["blocks"] == 20
    for key in ("tps", "blocks_s", "ceiling_tps", "rss_mb"):
        assert _number(doc[key]) and doc[key] > 0, key


def test_scale_smoke(scale: subprocess.Popen[str]) -> None:
    doc = _result(scale)
    assert doc["sizes"] == [0, 2000]
    for key in ("empty_tps", "full_tps", "tps_ratio", "empty_rss_mb", "full_rss_mb", "rss_mb"):
        assert _number(doc[key]), key
    assert 0 < doc["rss_mb"] < 2000


def test_consortium_smoke(consortium: subprocess.Popen[str]) -> None:
    doc = _result(consortium)
    for key in ("tps", "peer_tps", "p50_ms", "p99_ms", "fault_ratio", "ceiling_tps",
                "ratio_peer", "ratio_ceiling"):
        assert _number(doc[key]), key
    assert doc["peer_tps"] > 0 and doc["ceiling_tps"] > 0
    run = doc["per_run"][0]
    assert run["peer"]["replicas_agree"] is True
    assert run["light"]["codes"].get("pending", 0) > 0  # the load generator's txs were admitted
