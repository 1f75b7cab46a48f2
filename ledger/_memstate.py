"""In-memory state: a dict-backed `StateReader`, and an overlay that collects a write set.

`Overlay` is what an executor hands transactions: reads fall through to the base state, writes
stay in the overlay, so later transactions of a block see earlier ones' writes and a rejected
transaction can be rolled back (`checkpoint`/`rollback`) without touching the base.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from ledger._app import StateReader

_DELETED = None


class MemState:
    """A complete state held in a dict (tests, replay, dev chains)."""

    def __init__(self, items: Mapping[bytes, bytes] | None = None) -> None:
        self._d: dict[bytes, bytes] = dict(items or {})
        # the dict's own lookup: a state machine reads through it for every record
        self.get: Callable[[bytes], bytes | None] = self._d.get

    def apply(self, writes: Mapping[bytes, bytes | None]) -> None:
        """Apply a write set (None deletes)."""
        if None not in writes.values():
            self._d.update(writes)  # type: ignore[arg-type]  # no None among the values
            return
        for k, v in writes.items():
            if v is None:
                self._d.pop(k, None)
            else:
                self._d[k] = v

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        for k in sorted(k for k in self._d if k.startswith(prefix)):
            yield k, self._d[k]

    def items(self) -> dict[bytes, bytes]:
        return dict(self._d)

    def __len__(self) -> int:
        return len(self._d)


class Overlay:
    """Pending writes on top of a `StateReader`.

    `writes` is the write set to commit (None marks a deletion). `checkpoint()` returns a token
    and `rollback(token)` undoes every write made after it, for rejecting one transaction.
    """

    def __init__(self, base: StateReader) -> None:
        self._base = base
        self._w: dict[bytes, bytes | None] = {}
        self._journal: list[tuple[bytes, bool, bytes | None]] = []  # (key, was set, old value)

    def get(self, key: bytes) -> bytes | None:
        if key in self._w:
            return self._w[key]
        return self._base.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        self._record(key)
        self._w[key] = value

    def delete(self, key: bytes) -> None:
        self._record(key)
        self._w[key] = _DELETED

    def _record(self, key: bytes) -> None:
        self._journal.append((key, key in self._w, self._w.get(key)))

    def update(self, writes: Mapping[bytes, bytes | None]) -> None:
        """Apply a whole write set (None deletes), as one `set`/`delete` per key."""
        for key in writes:
            self._record(key)
        self._w.update(writes)

    def checkpoint(self) -> int:
        return len(self._journal)

    def rollback(self, token: int) -> None:
        while len(self._journal) > token:
            key, was_set, old = self._journal.pop()
            if was_set:
                self._w[key] = old
            else:
                self._w.pop(key, None)

    @property
    def writes(self) -> dict[bytes, bytes | None]:
        return dict(self._w)
