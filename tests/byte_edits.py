"""Byte-level edits of an encoding, for property tests that mutate valid inputs (test helper)."""

from __future__ import annotations

from collections.abc import Iterable

# op: 0 overwrite the byte at pos with val, 1 delete it, 2 insert val before it,
# 3 flip bit (val % 8) of it
Edit = tuple[int, int, int]


def apply_edits(seed: bytes, edits: Iterable[Edit]) -> bytes:
    """`seed` with each edit applied in turn (positions wrap around the current length; an
    empty buffer gets `val` appended)."""
    data = bytearray(seed)
    for op, pos, val in edits:
        if not data:
            data.append(val)
            continue
        pos %= len(data)
        if op == 0:
            data[pos] = val
        elif op == 1:
            del data[pos]
        elif op == 2:
            data.insert(pos, val)
        else:
            data[pos] ^= 1 << (val % 8)
    return bytes(data)
