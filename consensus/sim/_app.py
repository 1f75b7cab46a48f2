"""The simulator's application: blocks are small opaque byte strings made by the proposer.

A block is `encode({height, round, proposer, nonce})`; it is valid as block `h` when it decodes
to exactly that shape and names `h`. Byzantine proposers may make blocks that name another
height; honest validators must refuse those.
"""

from __future__ import annotations

from typing import Any

from ledger import decode, encode
from ledger.errors import DecodeError

_KEYS = frozenset({"height", "round", "proposer", "nonce"})


def make_block(height: int, round_: int, proposer: bytes, nonce: int, *,
               valid: bool = True) -> bytes:
    return encode({"height": height if valid else height + 1_000, "round": round_,
                   "proposer": proposer, "nonce": nonce})


def validate_block(block: bytes, height: int) -> bool:
    try:
        m: Any = decode(block, max_bytes=4096)
    except DecodeError:
        return False
    return isinstance(m, dict) and set(m) == _KEYS and m["height"] == height
