"""An in-memory Bloom filter of the keys a store holds, so a lookup of an absent key never
reaches LevelDB.

Why: most lookups a busy node makes are for keys that do not exist yet (a new event id, a new
EPC, a transaction id checked before it is indexed). LevelDB answers them from its own Bloom
filters, but it charges every lookup that consults more than one table to the first table (a
"seek"), and compacts a table whose allowance (one seek per 16 KB) runs out. With 1,000,000
transactions in the ledger (levels 1-3 all hold the whole key range) each absent lookup cost
about 4.5 KB of compaction: 20,000 of them on a settled 1M store, with no writes at all, made
LevelDB rewrite 90 MB; 30,000 transactions' execution rewrote 600 MB, and 0 with this filter
(docs/performance.md, "Scale"). LevelDB offers no option to turn seek compaction off.

The filter is exact in one direction only, which is the one that matters: a key it says is
absent was never added (no false negatives); a key it may hold is looked up in LevelDB as
before. It lives in memory only (rebuilt from a scan of the store when a store is opened for
writing), so it uses Python's own `hash`, which is randomised per process: that is harmless
here and costs 0.1 µs instead of a cryptographic hash's 0.5 µs.

It grows without rebuilding: a full part is kept and a new one, twice as large as all the
others together, is added; a lookup checks every part (a handful at most).

The class below is the pure-Python twin; the Rust extension has the same class
(`ledger._native.KeyFilter`, native/core/src/keyfilter.rs), bit for bit the same filter (same
hash, same positions, same part sizes), 40x faster to fill and 15x faster to ask: in the
consortium benchmark the twin's `update` alone was 8% of the nodes' CPU. A store takes the one
`ledger._accel` chose.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

_BITS_PER_KEY = 10     # at least; rounded up to a power of two: 1.2% false positives or fewer
_MASK32 = 0xFFFFFFFF
_BLOCK_BITS_LOG2 = 9   # a key's four bits lie in one 512-bit block: one cache line
_IN_BLOCK = (1 << _BLOCK_BITS_LOG2) - 1


class KeySet(Protocol):
    """What a store needs of a key filter (both backends' `KeyFilter`)."""

    def update(self, keys: Iterable[bytes]) -> None: ...
    def __contains__(self, key: bytes) -> bool: ...
    def held(self, keys: list[bytes]) -> list[int]: ...
    @property
    def count(self) -> int: ...
    @property
    def nbytes(self) -> int: ...


class _Part:
    __slots__ = ("bits", "blocks", "capacity", "count")

    def __init__(self, capacity: int) -> None:
        nbits = 1 << max(16, (capacity * _BITS_PER_KEY - 1).bit_length())
        self.bits = bytearray(nbits >> 3)
        # a key's block: the low 32 bits of its hash, masked to the part's 512-bit blocks
        self.blocks = ((nbits - 1) >> _BLOCK_BITS_LOG2) & _MASK32
        self.capacity = capacity
        self.count = 0


class KeyFilter:
    """Which keys a store may hold. `key in f` is False only for keys never `add`ed.

    Writers add a key before the write that stores it reaches the database, so a reader in
    another thread that is told "absent" saw the store as it was before that write. One writer
    at a time (a store's writes come from one thread): setting a bit is not atomic.
    """

    def __init__(self, capacity: int = 1 << 20) -> None:
        if not 0 <= capacity <= 1 << 40:
            raise ValueError("capacity must be between 0 and 2**40")
        self._parts: list[_Part] = [_Part(capacity)]

    def _room(self) -> _Part:
        part = self._parts[-1]
        if part.count >= part.capacity:
            part = _Part(2 * sum(p.capacity for p in self._parts))
            self._parts.append(part)
        return part

    def add(self, key: bytes) -> None:
        self.update((key,))

    def update(self, keys: Iterable[bytes]) -> None:
        """Add every key. A key the newest part already holds is not counted again, so a key
        rewritten at every block (a signer's nonce) does not make the filter grow; only new
        keys fill it. Each key sets four bit positions in one block; the loop is unrolled for
        them because a store's opening scan adds millions."""
        part = self._room()
        bits, blocks = part.bits, part.blocks
        free = part.capacity - part.count
        for k in keys:
            h = hash(k)
            base = (h & blocks) << _BLOCK_BITS_LOG2
            h2 = (h >> 32) & _MASK32
            step = (h2 >> 16) | 1
            b0 = base | (h2 & _IN_BLOCK)
            b1 = base | ((h2 + step) & _IN_BLOCK)
            b2 = base | ((h2 + 2 * step) & _IN_BLOCK)
            b3 = base | ((h2 + 3 * step) & _IN_BLOCK)
            m0, m1, m2, m3 = 1 << (b0 & 7), 1 << (b1 & 7), 1 << (b2 & 7), 1 << (b3 & 7)
            i0, i1, i2, i3 = b0 >> 3, b1 >> 3, b2 >> 3, b3 >> 3
            if bits[i0] & m0 and bits[i1] & m1 and bits[i2] & m2 and bits[i3] & m3:
                continue
            bits[i0] |= m0
            bits[i1] |= m1
            bits[i2] |= m2
            bits[i3] |= m3
            free -= 1
            if free == 0:
                part.count = part.capacity
                part = self._room()
                bits, blocks = part.bits, part.blocks
                free = part.capacity - part.count
        part.count = part.capacity - free

    def __contains__(self, key: bytes) -> bool:
        h = hash(key)
        h2 = (h >> 32) & _MASK32
        step = (h2 >> 16) | 1
        for part in self._parts:
            bits = part.bits
            base = (h & part.blocks) << _BLOCK_BITS_LOG2
            b = base | (h2 & _IN_BLOCK)
            if not bits[b >> 3] & (1 << (b & 7)):
                continue
            b = base | ((h2 + step) & _IN_BLOCK)
            if not bits[b >> 3] & (1 << (b & 7)):
                continue
            b = base | ((h2 + 2 * step) & _IN_BLOCK)
            if not bits[b >> 3] & (1 << (b & 7)):
                continue
            b = base | ((h2 + 3 * step) & _IN_BLOCK)
            if bits[b >> 3] & (1 << (b & 7)):
                return True
        return False

    def held(self, keys: list[bytes]) -> list[int]:
        """Positions in `keys` of the keys the filter may hold, in order."""
        return [i for i, k in enumerate(keys) if k in self]

    @property
    def count(self) -> int:
        """Distinct keys added (about: a new key whose positions were all set already, 1.2%
        of them or fewer, is not counted)."""
        return sum(p.count for p in self._parts)

    @property
    def nbytes(self) -> int:
        return sum(len(p.bits) for p in self._parts)

    @property
    def parts(self) -> int:
        return len(self._parts)
