"""The extension and its twin expose the same functions; the extension releases the GIL."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import ledger
from ledger import _native, _native_py
from tests.unit.native.gil_probe import spins_during

# EventExecutor has no twin here: its twin is the reference state machine itself
# (ledger/provenance/_app.py, `execute_reference`; tests/property/test_native_events.py)
PUBLIC = ["EventExecutor", "KeyFilter", "canonical_check", "canonical_encode",
          "consistency_proof", "get_threads", "inclusion_proof", "merkle_root", "reset_after_fork", "set_threads", "sha256_batch",
          "state_batch", "state_root", "tx_fields", "value_refs", "verify", "verify_batch"]


def test_twin_has_the_extension_functions_with_the_same_parameters() -> None:
    assert sorted(_native.__all__) == PUBLIC
    for name in PUBLIC:
        if isinstance(getattr(_native, name), type):
            continue
        native_params = list(inspect.signature(getattr(_native, name)).parameters)
        twin_params = list(inspect.signature(getattr(_native_py, name)).parameters)
        assert native_params == twin_params, name


def test_twin_has_the_extension_classes_with_the_same_members() -> None:
    def members(cls: type) -> set[str]:
        return {m for m in dir(cls) if not m.startswith("_") or m == "__contains__"}

    assert members(_native.KeyFilter) == members(_native_py.KeyFilter)


def test_set_threads_controls_get_threads() -> None:
    try:
        _native.set_threads(1)
        assert _native.get_threads() == 1
        _native.set_threads(2)
        assert _native.get_threads() == 2
        _native.set_threads(0)
        assert _native.get_threads() >= 1
    finally:
        _native.set_threads(0)
    assert _native_py.get_threads() == 1


@pytest.mark.parametrize("module", [_native, _native_py])
def test_set_threads_refuses_negative(module: object) -> None:
    with pytest.raises(ValueError, match=">= 0"):
        module.set_threads(-1)  # type: ignore[attr-defined]


def test_verify_batch_releases_the_gil() -> None:
    """While the extension verifies a batch, this thread keeps running Python code.

    If the GIL were held for the whole call, the loop in `spins_during` could not start until
    the batch was done and would count (almost) nothing.
    """
    key = ledger.SigningKey(bytes(range(32)))
    n = 6000
    msgs, sigs, pks = [b"gil"] * n, [key.sign(b"gil")] * n, [key.public] * n
    verdicts, spins = spins_during(lambda: _native.verify_batch(msgs, sigs, pks))
    assert verdicts == [True] * n
    assert spins > 1000


FORK_CHILD = """
import os
import ledger
from ledger import _native
key = ledger.SigningKey(bytes(32))
n = 2000
batch = ([b"m"] * n, [key.sign(b"m")] * n, [key.public] * n)
assert _native.verify_batch(*batch) == [True] * n  # the parent's pool is running
pid = os.fork()
if pid == 0:
    ok = _native.verify_batch(*batch) == [True] * n and _native.get_threads() == 1
    _native.set_threads(2)  # a fresh pool works in the child
    ok = ok and _native.verify_batch(*batch) == [True] * n
    os._exit(0 if ok else 1)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""


def test_forked_child_does_not_wait_for_the_parents_threads() -> None:
    """Without `reset_after_fork` (registered by `ledger._accel`), the child hangs forever."""
    out = subprocess.run([sys.executable, "-c", FORK_CHILD], cwd=Path(__file__).resolve().parents[3],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"


def test_no_second_signature_verifier_in_the_code() -> None:
    """Every Ed25519 check goes through `ledger.verify`/`verify_batch` (docs/signatures.md):
    only the twin may call libsodium's verification directly."""
    root = Path(__file__).resolve().parents[3]
    forbidden = ("crypto_sign_open", "crypto_sign_verify", "VerifyKey(", "verify_key.verify(",
                 "verify_strict", "Ed25519PublicKey.verify")
    offenders = []
    for package in ("ledger", "consensus", "p2p", "cli"):
        for path in sorted((root / package).rglob("*.py")):
            if path == root / "ledger" / "_native_py.py":
                continue
            text = path.read_text(encoding="utf-8")
            offenders += [f"{path.relative_to(root)}: {word}" for word in forbidden if word in text]
    assert offenders == []
