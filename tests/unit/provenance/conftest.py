"""Fixtures for the provenance tests: a small consortium on an in-memory ledger."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from ledger.provenance import MemLedger, make_genesis

MEMBERS = [
    ("maker", ("validator", "member")),
    ("recy", ("validator", "member", "recycler")),
    ("cert", ("certifier",)),
    ("auth", ("authority",)),
    ("obs", ("observer",)),
]

SER = "urn:epc:id:sgtin:4012345.011111."      # maker's prefix 4012345
LOT = "urn:epc:class:lgtin:4012345.012345."
OTHER = "urn:epc:id:sgtin:5012345.011111."    # recy's prefix 5012345


@pytest.fixture
def led() -> MemLedger:
    g, keys = make_genesis(MEMBERS, seed=b"test")
    return MemLedger(g, keys)


_ids = itertools.count()


@pytest.fixture
def ev() -> Callable[..., dict[str, Any]]:
    def make(typ: str, **fields: Any) -> dict[str, Any]:
        return {"type": typ, "eventID": f"urn:uuid:test-{next(_ids)}",
                "eventTime": "2025-05-01T10:00:00.000Z", "eventTimeZoneOffset": "+02:00",
                **fields}
    return make


def ok(res: Any) -> None:
    assert res.ok, f"{res.code}: {res.reason}"


def rejected(res: Any, code: str) -> None:
    assert not res.ok, "expected a rejection"
    assert res.code == code, f"{res.code}: {res.reason}"
    assert res.reason
