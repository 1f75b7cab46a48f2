"""Consensus state persistence: the newest completely written state survives, a torn write
falls back to the previous state, the previous single-file layout is still read."""

from __future__ import annotations

from pathlib import Path

from cli.node import _persist
from cli.node._persist import HEADER, MAGIC, SLOTS, load_consensus_state, save_consensus_state


def test_nothing_persisted_reads_none(tmp_path: Path) -> None:
    assert load_consensus_state(tmp_path / "consensus") is None


def test_newest_state_wins_and_slots_alternate(tmp_path: Path) -> None:
    d = tmp_path / "consensus"
    for i in range(7):
        save_consensus_state(d, b"state %d" % i + b"x" * (1000 - 100 * i))
        assert load_consensus_state(d) == b"state %d" % i + b"x" * (1000 - 100 * i)
    assert sorted(p.name for p in d.iterdir()) == sorted(SLOTS)


def test_torn_write_of_the_newest_falls_back_to_the_previous(tmp_path: Path) -> None:
    d = tmp_path / "consensus"
    save_consensus_state(d, b"first")
    save_consensus_state(d, b"second" * 100)
    newest = d / SLOTS[1]  # the first save went to slot a, the second to slot b
    raw = newest.read_bytes()
    newest.write_bytes(raw[:HEADER.size + 10])  # the crash came in the middle of the payload
    assert load_consensus_state(d) == b"first"
    flipped = bytearray(raw)
    flipped[-1] ^= 1
    newest.write_bytes(bytes(flipped))
    assert load_consensus_state(d) == b"first"
    # and the next save goes over the damaged slot, keeping the good one
    save_consensus_state(d, b"third")
    assert load_consensus_state(d) == b"third"


def test_files_changed_behind_the_cache_are_rescanned(tmp_path: Path) -> None:
    d = tmp_path / "consensus"
    save_consensus_state(d, b"one")
    save_consensus_state(d, b"two")
    # another writer (a node process on the same home) wrote a much newer state into slot a
    data = b"from elsewhere"
    import hashlib

    (d / SLOTS[0]).write_bytes(HEADER.pack(MAGIC, 1000, len(data),
                                           hashlib.sha256(data).digest()) + data)
    save_consensus_state(d, b"three")
    assert load_consensus_state(d) == b"three"
    assert _persist._read_slot(d / SLOTS[1]) == (1001, b"three")


def test_legacy_single_file_is_read_then_superseded(tmp_path: Path) -> None:
    d = tmp_path / "consensus"
    d.mkdir()
    (d / "state.bin").write_bytes(b"old layout")
    assert load_consensus_state(d) == b"old layout"
    save_consensus_state(d, b"new")
    assert not (d / "state.bin").exists()
    assert load_consensus_state(d) == b"new"
