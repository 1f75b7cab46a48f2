"""Durable consensus state: `HOME/data/consensus/state.bin`.

The core emits `Persist(state)` before every vote it sends; the driver writes it here and only
then executes the following actions (the Broadcast of that vote). The write is a new file,
fsynced, renamed over the old one, and the directory fsynced: after a crash the file holds either
the previous state or the new one, never a torn mix, so a restarted node never signs a second,
different vote for a (height, round) it already voted in.
"""

from __future__ import annotations

import os
from pathlib import Path

STATE_FILE = "state.bin"


def save_consensus_state(directory: Path, data: bytes) -> None:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = directory / (STATE_FILE + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, directory / STATE_FILE)
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def load_consensus_state(directory: Path) -> bytes | None:
    try:
        return (directory / STATE_FILE).read_bytes()
    except FileNotFoundError:
        return None
