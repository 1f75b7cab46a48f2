"""Durable consensus state: `HOME/data/consensus/state.a` and `state.b`.

The core emits `Persist(state)` before every vote it sends; the driver writes it here and only
then executes the following actions (the Broadcast of that vote). After a crash the node must
find the last state it persisted, or at worst the one before it if the crash came while that
write was in progress (the vote that follows it was then not sent yet), never a torn mix: a
restarted node must never sign a second, different vote for a (height, round) it already voted
in.

Why two files written in turn instead of write-new-file + rename: a rename needs an fsync of
the file and another of the directory, and this runs before every vote (two or three per block),
so it was the largest single cost of an idle-to-light-loaded node. Each write here goes over the
older of the two files, in place, with a header (magic, sequence number, length, SHA-256 of the
payload), and one `fdatasync`. Reading takes the valid file with the highest sequence number; a
torn write fails its checksum and the other file, untouched, still holds the previous state.
Only creating a file needs a directory fsync (once per file). A `state.bin` from the previous
layout is read when neither slot file exists yet.
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

SLOTS = ("state.a", "state.b")
LEGACY_FILE = "state.bin"
MAGIC = b"PLCSv1\0\0"
HEADER = struct.Struct(">8sQQ32s")  # magic, sequence, payload length, sha256(payload)

# directory -> (sequence number of the newest slot, its index, both slots' stat signatures
# when we last wrote or read them: if the files changed behind our back, scan again)
_newest: dict[Path, tuple[int, int, tuple[tuple[int, int, int] | None, ...]]] = {}


def _stats(directory: Path) -> tuple[tuple[int, int, int] | None, ...]:
    out: list[tuple[int, int, int] | None] = []
    for name in SLOTS:
        try:
            st = os.stat(directory / name)
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except FileNotFoundError:
            out.append(None)
    return tuple(out)


def _read_slot(path: Path) -> tuple[int, bytes] | None:
    """(sequence, payload) if `path` holds a complete, checksummed state; else None."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    if len(raw) < HEADER.size:
        return None
    magic, seq, n, digest = HEADER.unpack_from(raw)
    payload = raw[HEADER.size:HEADER.size + n]
    if magic != MAGIC or len(payload) != n or hashlib.sha256(payload).digest() != digest:
        return None
    return seq, payload


def _scan(directory: Path) -> tuple[int, int, bytes | None]:
    """(newest sequence, its slot index, its payload) over both slots; (0, 1, None) if none."""
    best: tuple[int, int, bytes | None] = (0, 1, None)
    for i, name in enumerate(SLOTS):
        got = _read_slot(directory / name)
        if got is not None and got[0] > best[0]:
            best = (got[0], i, got[1])
    return best


def save_consensus_state(directory: Path, data: bytes) -> None:
    """Durably record `data` as the newest consensus state before returning."""
    key = directory.resolve()
    cached = _newest.get(key)
    if cached is None or cached[2] != _stats(directory):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        seq, idx, _ = _scan(directory)
    else:
        seq, idx, _ = cached
    target = directory / SLOTS[1 - idx]
    created = not target.exists()
    legacy = directory / LEGACY_FILE
    record = HEADER.pack(MAGIC, seq + 1, len(data), hashlib.sha256(data).digest()) + data
    fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        view = memoryview(record)
        off = 0
        while off < len(view):
            off += os.pwrite(fd, view[off:], off)
        os.fdatasync(fd)
    finally:
        os.close(fd)
    if created:  # the new file's directory entry must be durable too
        if legacy.exists():  # superseded by the slots: never fall back to it again
            legacy.unlink()
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    _newest[key] = (seq + 1, 1 - idx, _stats(directory))


def load_consensus_state(directory: Path) -> bytes | None:
    """The newest completely persisted state, or None when nothing was persisted."""
    seq, idx, payload = _scan(directory)
    if payload is not None:
        _newest[directory.resolve()] = (seq, idx, _stats(directory))
        return payload
    try:
        return (directory / LEGACY_FILE).read_bytes()
    except FileNotFoundError:
        return None
