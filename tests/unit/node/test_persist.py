"""Consensus state persistence: the newest completely written state survives, a torn write
falls back to the previous state, a writer opened again continues above the newest state, the
previous single-file layout is still read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.node import _persist
from cli.node._persist import HEADER, SLOTS, ConsensusStateWriter, load_consensus_state


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[ConsensusStateWriter]:
    w = ConsensusStateWriter(tmp_path / "consensus")
    yield w
    w.close()


def test_nothing_persisted_reads_none(tmp_path: Path) -> None:
    assert load_consensus_state(tmp_path / "consensus") is None


def test_newest_state_wins_and_slots_alternate(tmp_path: Path,
                                               writer: ConsensusStateWriter) -> None:
    d = tmp_path / "consensus"
    assert load_consensus_state(d) is None  # the slots exist, empty, until the first save
    for i in range(7):
        writer.save(b"state %d" % i + b"x" * (1000 - 100 * i))
        assert load_consensus_state(d) == b"state %d" % i + b"x" * (1000 - 100 * i)
    assert sorted(p.name for p in d.iterdir()) == sorted(SLOTS)


def test_torn_write_of_the_newest_falls_back_to_the_previous(tmp_path: Path) -> None:
    d = tmp_path / "consensus"
    writer = ConsensusStateWriter(d)
    writer.save(b"first")
    writer.save(b"second" * 100)
    writer.close()
    newest = d / SLOTS[1]  # the first save went to slot a, the second to slot b
    raw = newest.read_bytes()
    newest.write_bytes(raw[:HEADER.size + 10])  # the crash came in the middle of the payload
    assert load_consensus_state(d) == b"first"
    flipped = bytearray(raw)
    flipped[-1] ^= 1
    newest.write_bytes(bytes(flipped))
    assert load_consensus_state(d) == b"first"
    # a restarted node's writer goes over the damaged slot, keeping the good one
    writer = ConsensusStateWriter(d)
    writer.save(b"third")
    writer.close()
    assert load_consensus_state(d) == b"third"
    assert _persist._read_slot(d / SLOTS[1]) == (2, b"third")
    assert _persist._read_slot(d / SLOTS[0]) == (1, b"first")


def test_a_writer_opened_again_continues_above_the_newest_state(tmp_path: Path) -> None:
    d = tmp_path / "consensus"
    first = ConsensusStateWriter(d)
    for data in (b"one", b"two", b"three"):
        first.save(data)
    first.close()
    again = ConsensusStateWriter(d)
    again.save(b"four")  # over the older slot ("two", sequence 2), not the newest
    again.close()
    assert load_consensus_state(d) == b"four"
    assert _persist._read_slot(d / SLOTS[1]) == (4, b"four")
    assert _persist._read_slot(d / SLOTS[0]) == (3, b"three")


def test_legacy_single_file_is_read_then_superseded(tmp_path: Path) -> None:
    d = tmp_path / "consensus"
    d.mkdir()
    (d / "state.bin").write_bytes(b"old layout")
    assert load_consensus_state(d) == b"old layout"
    writer = ConsensusStateWriter(d)
    assert load_consensus_state(d) == b"old layout"  # empty slots do not hide it
    writer.save(b"new")
    writer.close()
    assert not (d / "state.bin").exists()
    assert load_consensus_state(d) == b"new"
