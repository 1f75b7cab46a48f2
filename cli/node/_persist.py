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
A `state.bin` from the previous layout is read when neither slot holds a state yet.

Why a writer that keeps both files open: a save is then one `pwrite` and one `fdatasync`. Saving
by path (resolve, stat both slots to see whether someone else wrote them, open, close) cost about
a dozen more system calls and ~0.3 ms of Python per vote, two or three votes per height, on the
consensus critical path. Nobody else writes the slots while a node runs: the node holds its
home's LevelDB lock, so a second node process on the same home cannot start.
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


def load_consensus_state(directory: Path) -> bytes | None:
    """The newest completely persisted state, or None when nothing was persisted."""
    payload = _scan(directory)[2]
    if payload is not None:
        return payload
    try:
        return (directory / LEGACY_FILE).read_bytes()
    except FileNotFoundError:
        return None


class ConsensusStateWriter:
    """Writes consensus states into the two slots of `directory`, each durable on return.

    Opening creates the directory and the slot files (made durable at once, so that a save
    never needs a directory fsync) and finds the newest slot; `close` releases the files.
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._seq, newest, _ = _scan(directory)
        self._older = 1 - newest
        self._legacy: Path | None = directory / LEGACY_FILE
        created = False
        self._fds: list[int] = []
        try:
            for name in SLOTS:
                path = directory / name
                created |= not path.exists()
                self._fds.append(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
            if created:  # the new files' directory entries must be durable too
                dfd = os.open(directory, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
        except BaseException:
            self.close()
            raise

    def save(self, data: bytes) -> None:
        """Durably record `data` as the newest consensus state before returning."""
        fd = self._fds[self._older]
        record = HEADER.pack(MAGIC, self._seq + 1, len(data), hashlib.sha256(data).digest()) + data
        view = memoryview(record)
        off = 0
        while off < len(view):
            off += os.pwrite(fd, view[off:], off)
        os.fdatasync(fd)
        self._seq += 1
        self._older = 1 - self._older
        if self._legacy is not None:  # superseded by the slots: never fall back to it again
            self._legacy.unlink(missing_ok=True)
            self._legacy = None

    def close(self) -> None:
        fds, self._fds = self._fds, []
        for fd in fds:
            os.close(fd)
