"""Every decoder and entry point either accepts an input or raises a clean PartledgerError:
random bytes, and random mutations of valid inputs (the CI-sized version of `make fuzz`)."""

from __future__ import annotations

import functools
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import PartledgerError
from tests.byte_edits import apply_edits
from tests.fuzz.targets import TARGETS


@functools.cache
def _seeds(name: str) -> list[bytes]:
    """Seeds are built once per target (some sign, one derives an Argon2id key)."""
    return TARGETS[name].seeds()


edits = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2**16), st.integers(0, 255)),
                 min_size=1, max_size=8)


@pytest.mark.parametrize("name", sorted(TARGETS))
@given(data=st.binary(max_size=512), seed_index=st.integers(0, 10), edit_list=edits)
@settings(max_examples=100, deadline=None)
def test_fuzz_target_rejects_cleanly(name: str, data: bytes, seed_index: int,
                                     edit_list: list[tuple[int, int, int]]) -> None:
    target = TARGETS[name]
    seeds = _seeds(name)
    for candidate in (data, apply_edits(seeds[seed_index % len(seeds)], edit_list)):
        try:
            target.run(candidate)
        except PartledgerError:
            pass


def test_fuzz_seeds_are_accepted() -> None:
    for target in TARGETS.values():
        for seed in target.seeds():
            target.run(seed)


def test_atheris_short_run() -> None:
    """The coverage-guided fuzzer runs each target briefly (a fixed seed and number of inputs, so
    the same ones every time; `make fuzz` explores) and finds nothing."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, "-m", "tests.fuzz.run", "--runs", "5000", "--seed", "1"],
                          cwd=root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all fuzz targets clean" in proc.stdout
