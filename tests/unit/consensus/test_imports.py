"""The core is sans-IO: no module of `consensus/` outside `consensus/sim/` may import I/O,
clocks or randomness (the simulator may use `random.Random(seed)` and nothing else of that kind)."""

from __future__ import annotations

import ast
from pathlib import Path

import consensus

FORBIDDEN = {"trio", "libp2p", "plyvel", "time", "random", "socket", "asyncio", "os", "threading",
             "datetime", "select", "selectors", "subprocess", "multiprocessing", "p2p", "cli"}
SIM_FORBIDDEN = FORBIDDEN - {"random"}
ROOT = Path(consensus.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_imports_no_io_clock_or_randomness() -> None:
    files = [p for p in ROOT.rglob("*.py") if "sim" not in p.relative_to(ROOT).parts]
    assert len(files) >= 5
    for path in files:
        bad = _imports(path) & FORBIDDEN
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_simulator_uses_only_seeded_randomness() -> None:
    files = list((ROOT / "sim").rglob("*.py"))
    assert files
    for path in files:
        bad = _imports(path) & SIM_FORBIDDEN
        assert not bad, f"sim/{path.name} imports {sorted(bad)}"
        text = path.read_text()
        assert "random.random(" not in text and "random.randint(" not in text, path
