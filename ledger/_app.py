"""The contract between the ledger's storage/consensus plumbing and the state machine.

The state machine (provenance rules) is a pure function of (state, block context, transactions)
to (write set, per-transaction results). Everything it reads comes through a `StateReader`;
everything it changes is returned as a write set that the store commits atomically with the block.
That keeps it deterministic and testable without LevelDB.

State root: a hash chain over each block's sorted write set,
`root_h = SHA-256(STATE_ROOT_DOMAIN ‖ root_{h-1} ‖ SHA-256(canonical sorted [[key, value|nil]…]))`.
Replicas that compute a different root refuse the block, so non-determinism shows at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ledger import _accel, _native_py
from ledger._codec import encode
from ledger._crypto import sha256
from ledger._frozen import positional_constructor
from ledger._tx import Transaction

STATE_ROOT_DOMAIN = b"partledger/state/v1\x00"
EMPTY_ROOT = bytes(32)

WriteSet = Mapping[bytes, bytes | None]  # None deletes the key


class StateReader(Protocol):
    def get(self, key: bytes) -> bytes | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockContext:
    chain: bytes
    height: int
    time_ms: int
    proposer: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class TxResult:
    tx_id: bytes
    ok: bool
    code: str = "ok"
    reason: str = ""


_new_result = positional_constructor(TxResult, "tx_id", "ok")


def accepted(tx_ids: Sequence[bytes]) -> list[TxResult]:
    """`TxResult(tx_id=i, ok=True)` for each id: a native execution accepts whole blocks,
    thousands of transactions (the fast constructor, ledger/_frozen.py)."""
    return [_new_result(i, True) for i in tx_ids]


@dataclass(frozen=True, slots=True, kw_only=True)
class Execution:
    """What applying a list of transactions produced. Rejected transactions write nothing."""

    writes: dict[bytes, bytes | None]
    results: list[TxResult]

    @property
    def all_ok(self) -> bool:
        return all(r.ok for r in self.results)


class Application(Protocol):
    def genesis_writes(self, genesis: object) -> dict[bytes, bytes | None]:
        """The initial state implied by the genesis file (members, organisations, roles)."""
        ...

    def execute(self, state: StateReader, ctx: BlockContext,
                txs: Sequence[Transaction]) -> Execution:
        """Apply `txs` in order on top of `state`; later txs see earlier txs' writes."""
        ...


def next_state_root(prev_root: bytes, writes: WriteSet) -> bytes:
    """The state root after `writes`: the definition below; the extension's `state_root`
    computes the same from a plain dict without building the sorted list and its encoding
    (tests/unit/native/test_state_root.py)."""
    backend = _accel.backend
    if backend is not _native_py:
        fast: bytes | None = backend.state_root(STATE_ROOT_DOMAIN, prev_root, writes)
        if fast is not None:
            return fast
    # sorted (key, value) tuples encode exactly as the [key, value] lists of the definition
    return sha256(STATE_ROOT_DOMAIN + prev_root + sha256(encode(sorted(writes.items()))))
