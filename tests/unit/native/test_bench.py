"""`bench/native.py --smoke --json` runs and reports the figures the issue asks for."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_bench_native_smoke_json_has_the_ratios() -> None:
    out = subprocess.run([sys.executable, "bench/native.py", "--smoke", "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("verify_1core", "verify_2core", "merkle_100k"):
        assert isinstance(result[key], float) and result[key] > 0, key
    assert result["smoke"] is True
    assert "verify_pynacl_b256" in result["figures"]
    assert "verify_1core" in out.stderr  # the table went to stderr
