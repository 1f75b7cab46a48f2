"""`PARTLEDGER_NATIVE` picks the backend of the whole process (checked in fresh interpreters)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

PROBE = (
    "import ledger, ledger._accel as a; "
    "k = ledger.SigningKey(bytes(32)); "
    "ok = ledger.verify(b'm', k.sign(b'm'), k.public); "
    "print(ledger.BACKEND_NAME, a.backend.__name__, ok)"
)
HIDE_EXTENSION = "import sys; sys.modules['ledger._native'] = None\n"
# `ledger.errors` cannot be imported before `ledger` here, so the class is named in the output.
CATCH = ("try:\n    import ledger\n"
         "except Exception as e:\n    print(type(e).__name__, e.code, '|', e)\n")


def run(code: str, native: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PARTLEDGER_NATIVE"}
    if native is not None:
        env["PARTLEDGER_NATIVE"] = native
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.mark.parametrize(("native", "expected"), [
    ("0", "python ledger._native_py True"),
    ("1", "native ledger._native True"),
    (None, "native ledger._native True"),
    ("", "native ledger._native True"),
])
def test_PARTLEDGER_NATIVE_selects_backend(native: str | None, expected: str) -> None:
    out = run(PROBE, native)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected


def test_PARTLEDGER_NATIVE_1_without_extension_is_a_config_error() -> None:
    out = run(HIDE_EXTENSION + CATCH, "1")
    assert out.returncode == 0, out.stderr
    kind, message = out.stdout.strip().split(" | ", 1)
    assert kind == "ConfigError config"
    assert "PARTLEDGER_NATIVE=1" in message
    assert "ledger._native is not built" in message
    assert "maturin develop" in message


def test_missing_extension_falls_back_to_twin_when_unset() -> None:
    out = run(HIDE_EXTENSION + PROBE, None)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "python ledger._native_py True"


def test_PARTLEDGER_NATIVE_other_value_is_a_config_error() -> None:
    out = run(CATCH, "yes")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ConfigError config | PARTLEDGER_NATIVE must be 0")
