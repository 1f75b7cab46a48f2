"""Chooses the hashing/verification backend once per process.

`PARTLEDGER_NATIVE=0` forces the pure-Python twin, `=1` requires the Rust extension (and fails
loudly if it is missing), unset uses the extension when it is importable.
"""

from __future__ import annotations

import os
from types import ModuleType

from ledger import _native_py
from ledger.errors import ConfigError


def _load() -> tuple[ModuleType, str]:
    mode = os.environ.get("PARTLEDGER_NATIVE", "").strip()
    if mode == "0":
        return _native_py, "python"
    try:
        from ledger import _native  # type: ignore[attr-defined]
    except ImportError as exc:
        if mode == "1":
            raise ConfigError(
                "PARTLEDGER_NATIVE=1 but the Rust extension ledger._native is not built "
                f"({exc}); build it with `pip install .` or `maturin develop --release`"
            ) from exc
        return _native_py, "python"
    return _native, "native"


backend, BACKEND_NAME = _load()
