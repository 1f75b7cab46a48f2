"""Chooses the hashing/verification backend once per process.

`PARTLEDGER_NATIVE=0` forces the pure-Python twin, `=1` requires the Rust extension (and fails
loudly if it is missing), unset (or empty) uses the extension when it is importable. Both
backends give identical results (tests/unit/native/), so the choice changes speed only.
Callers read `_accel.backend` at call time, so tests can swap it (tests/conftest.py).
"""

from __future__ import annotations

import os
import sys
from types import ModuleType

from ledger import _native_py
from ledger.errors import ConfigError

ENV_VAR = "PARTLEDGER_NATIVE"


def _load() -> tuple[ModuleType, str]:
    mode = os.environ.get(ENV_VAR, "").strip()
    if mode not in ("", "0", "1"):
        raise ConfigError(f"{ENV_VAR} must be 0 (pure Python), 1 (Rust extension) or unset, "
                          f"not {mode!r}")
    if mode == "0":
        return _native_py, "python"
    try:
        from ledger import _native
    except ImportError as exc:
        if mode == "1":
            raise ConfigError(
                f"{ENV_VAR}=1 but the Rust extension ledger._native is not built "
                f"({exc}); build it with `pip install .` or `maturin develop --release`"
            ) from exc
        return _native_py, "python"
    return _native, "native"


def _after_fork_in_child() -> None:
    """rayon's worker threads do not survive fork(): without this a forked child would wait
    for them forever on its first parallel call."""
    native = sys.modules.get("ledger._native")
    if native is not None:
        native.reset_after_fork()


backend, BACKEND_NAME = _load()
if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)
