"""`bench/provenance.py --smoke` runs end to end and reports every figure."""

from __future__ import annotations

import json

import pytest


def test_bench_provenance_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.provenance import main

    assert main(["--smoke", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["smoke"] and out["events"] >= 1000
    assert out["trace_depth"] >= 11              # deep genealogy: 10+ levels
    for q in ("trace_back", "trace_back_with_events", "trace_forward", "recall"):
        assert out["queries"][q]["p99_ms"] >= out["queries"][q]["p50_ms"] > 0
    assert out["commit_with_index_s"] > 0 and out["commit_without_index_s"] > 0
