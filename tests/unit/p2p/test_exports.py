"""Each package re-exports its public names once, with a sorted, complete `__all__`."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("name", ["p2p", "cli.node"])
def test_exports_sorted_and_resolvable(name: str) -> None:
    mod = importlib.import_module(name)
    names = list(mod.__all__)
    assert names == sorted(names) and len(set(names)) == len(names)
    for n in names:
        assert getattr(mod, n) is not None
    public = {n for n in vars(mod) if not n.startswith("_") and not n.islower()}
    assert public <= set(names), public - set(names)
