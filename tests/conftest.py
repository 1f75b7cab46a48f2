"""Shared test configuration: `--run-slow`, and backend selection for twin tests."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run tests marked slow (soak-length runs)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="soak-length; run with --run-slow (make soak)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


# --- Backend selection (native helper) -------------------------------------------------------
# `accel_backend` runs the requesting test once with the pure-Python twin and once with the Rust
# extension, by swapping `ledger._accel.backend`, which `ledger.verify`, `ledger.verify_batch`,
# `ledger._crypto.sha256_batch` and `ledger._merkle` read at call time. Use it in any test whose
# outcome depends on signature verification or hashing:
#     @pytest.mark.usefixtures("accel_backend")
#     def test_Seal_rejects_forged_vote(): ...
# (`PARTLEDGER_NATIVE=0 pytest` additionally runs the whole suite on the twin.)

BACKEND_NAMES = ("python", "native")


def load_backend(name: str) -> ModuleType:
    """The backend module called `name`; the native one must be built (`maturin develop`)."""
    if name == "python":
        from ledger import _native_py
        return _native_py
    from ledger import _native
    return _native


@pytest.fixture(params=BACKEND_NAMES)
def accel_backend(request: pytest.FixtureRequest,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    from ledger import _accel

    module = load_backend(request.param)
    monkeypatch.setattr(_accel, "backend", module)
    monkeypatch.setattr(_accel, "BACKEND_NAME", request.param)
    yield module
