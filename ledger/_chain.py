"""Building a chain without a network: execute, seal with validator keys, commit.

This is the single-process path used by `dev generate`, tests, benchmarks and the crash test.
The node uses the same pieces (`execute_block`, `make_header`) with consensus supplying the seal.

Rules the builder follows (and audit replay checks):
- block h has `prev_hash` = hash of block h-1 (block 1: the chain id), `time_ms` not below the
  previous block's nor the genesis time, a proposer that is a validator node key, and
  `validators_hash` of the genesis validator set;
- only transactions the application accepts go into a block (`build_block` drops the others and
  reports them); `state_root` is `next_state_root(previous root, write set)`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger._app import Application, BlockContext, Execution, StateReader, TxResult
from ledger._app import next_state_root as _next_root
from ledger._block import Block, BlockHeader, Seal, sign_commit, tx_root
from ledger._crypto import SigningKey
from ledger._genesis import Genesis
from ledger._store import Store, Tip
from ledger._tx import Transaction
from ledger.errors import ConfigError, ValidationError

TxSpec = tuple[SigningKey, str, Mapping[str, Any]]  # (signing org key, kind, body)


def make_header(genesis: Genesis, *, prev: Tip, time_ms: int, proposer: bytes,
                txs: Sequence[Transaction], writes: Mapping[bytes, bytes | None]) -> BlockHeader:
    """The header of the block after `prev` holding `txs` that produced `writes`."""
    return BlockHeader(chain=genesis.chain_id, height=prev.height + 1, prev_hash=prev.block_hash,
                       time_ms=time_ms, proposer=proposer, tx_root=tx_root(txs),
                       tx_count=len(txs), state_root=_next_root(prev.state_root, writes),
                       validators_hash=genesis.validators_hash)


def execute_block(app: Application, state: StateReader, genesis: Genesis, *, height: int,
                  time_ms: int, proposer: bytes, txs: Sequence[Transaction]) -> Execution:
    ctx = BlockContext(chain=genesis.chain_id, height=height, time_ms=time_ms, proposer=proposer)
    return app.execute(state, ctx, list(txs))


def seal_block(genesis: Genesis, block: Block, keys: Sequence[SigningKey], *,
               round_: int = 0) -> Seal:
    """A seal from the validator `keys` given (callers pass at least a quorum)."""
    vset = set(genesis.validators)
    votes = []
    for k in keys:
        if k.public not in vset:
            raise ConfigError(f"key {k.public.hex()[:16]} is not a validator of this genesis",
                              code="not_validator")
        votes.append((k.public, sign_commit(k, genesis.chain_id, block.height, round_,
                                            block.hash)))
    return Seal.build(height=block.height, round_=round_, block_hash=block.hash, votes=votes)


def proposer_for(genesis: Genesis, height: int, round_: int = 0) -> bytes:
    """Round-robin proposer (what dev chains use; consensus has its own rule)."""
    v = genesis.validators
    return v[(height + round_) % len(v)]


def init_store(path: Any, genesis: Genesis, app: Application) -> Store:
    """Create and initialise a store for `genesis` (height-0 state from the application)."""
    store = Store.open(path, genesis=genesis, create=True)
    try:
        if not store.initialised:
            store.init(app.genesis_writes(genesis))
    except BaseException:
        store.close()
        raise
    return store


@dataclass
class BuildResult:
    block: Block
    execution: Execution
    rejected: list[TxResult] = field(default_factory=list)


class ChainBuilder:
    """Appends blocks to a store: executes with `app`, seals with `validator_keys`, commits.

    `nonces` tracks each signer's next nonce for `append_specs`, starting from `first_nonce`.
    """

    def __init__(self, store: Store, genesis: Genesis, app: Application,
                 validator_keys: Sequence[SigningKey], *, first_nonce: int = 0) -> None:
        self.store, self.genesis, self.app = store, genesis, app
        self.validator_keys = list(validator_keys)
        self.first_nonce = first_nonce
        self.nonces: dict[bytes, int] = {}
        self._last_time = genesis.genesis_time_ms

    def next_time_ms(self) -> int:
        head = self.store.head()
        if head.height:
            blk = self.store.block(head.height)
            assert blk is not None
            self._last_time = max(self._last_time, blk.header.time_ms)
        return self._last_time + self.genesis.consensus.block_interval_ms

    def append(self, txs: Sequence[Transaction], *, time_ms: int | None = None) -> Block:
        """Commit a block of `txs`; every one must be accepted by the application.

        Raises:
            ValidationError: naming the first transaction the application rejects.
        """
        head = self.store.head()
        t = self.next_time_ms() if time_ms is None else time_ms
        proposer = proposer_for(self.genesis, head.height + 1)
        ex = execute_block(self.app, self.store, self.genesis, height=head.height + 1, time_ms=t,
                           proposer=proposer, txs=txs)
        for r in ex.results:
            if not r.ok:
                raise ValidationError(f"transaction {r.tx_id.hex()} rejected: {r.reason}",
                                      code=r.code)
        header = make_header(self.genesis, prev=head, time_ms=t, proposer=proposer, txs=txs,
                             writes=ex.writes)
        block = Block(header=header, txs=tuple(txs))
        seal = seal_block(self.genesis, block, self.validator_keys)
        self.store.commit_block(block, seal, ex.writes)
        self._last_time = t
        return block

    def append_specs(self, specs: Sequence[TxSpec], *, time_ms: int | None = None
                     ) -> BuildResult:
        """Sign `specs` with consecutive per-signer nonces, drop what the application rejects
        (re-signing the rest so nonces stay gap-free) and commit the block.
        """
        head = self.store.head()
        t = self.next_time_ms() if time_ms is None else time_ms
        proposer = proposer_for(self.genesis, head.height + 1)
        pending = list(specs)
        rejected: list[TxResult] = []
        while True:
            nonces = dict(self.nonces)
            txs = []
            for key, kind, body in pending:
                n = nonces.get(key.public, self.first_nonce)
                nonces[key.public] = n + 1
                txs.append(Transaction.create(key, chain=self.genesis.chain_id, kind=kind,
                                              body=body, nonce=n))
            ex = execute_block(self.app, self.store, self.genesis, height=head.height + 1,
                               time_ms=t, proposer=proposer, txs=txs)
            bad = [i for i, r in enumerate(ex.results) if not r.ok]
            if not bad:
                break
            rejected.extend(ex.results[i] for i in bad)
            drop = set(bad)
            pending = [s for i, s in enumerate(pending) if i not in drop]
        header = make_header(self.genesis, prev=head, time_ms=t, proposer=proposer, txs=txs,
                             writes=ex.writes)
        block = Block(header=header, txs=tuple(txs))
        seal = seal_block(self.genesis, block, self.validator_keys)
        self.store.commit_block(block, seal, ex.writes)
        self.nonces = nonces
        self._last_time = t
        return BuildResult(block, ex, rejected)


def build_chain(store: Store, genesis: Genesis, app: Application,
                validator_keys: Sequence[SigningKey], tx_batches: Iterable[Sequence[TxSpec]],
                *, first_nonce: int = 0) -> list[BuildResult]:
    """Append one block per batch of transaction specs (see `ChainBuilder.append_specs`)."""
    b = ChainBuilder(store, genesis, app, validator_keys, first_nonce=first_nonce)
    return [b.append_specs(batch) for batch in tx_batches]
