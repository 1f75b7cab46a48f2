from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("name", ["consensus", "consensus.sim"])
def test_exports_sorted_complete_and_private_origin(name: str) -> None:
    mod = importlib.import_module(name)
    exported = mod.__all__
    assert exported == sorted(exported)
    assert len(set(exported)) == len(exported)
    for attr in exported:
        obj = getattr(mod, attr)
        origin = getattr(obj, "__module__", None)
        if origin is not None and isinstance(obj, type):
            assert origin.startswith(name + "._"), (attr, origin)
    public = {a for a in vars(mod) if not a.startswith("_")} - {"annotations"}
    submodules = {"sim"} if name == "consensus" else set()
    assert public - submodules == set(exported)
