"""The block executor: builds proposals, validates them before a vote, commits final blocks.

Every path runs the same state machine (`ledger.Application.execute`) on the committed state
seen through an overlay, and compares the resulting state root with the header's: a replica that
computes a different root refuses the block (votes no), so non-determinism shows at once.

- `build`: the proposer executes the mempool's candidates, drops the ones the state machine
  rejects (they are reported, so their status can say why), and re-executes until every
  transaction in the block passes; the block's header carries the state root.
- `validate`: header rules (chain, height, hash link, validator set, time), body (tx root and
  count), signatures (only of transactions this node has not already admitted byte for byte),
  then execution; the write set is kept for `commit` so a block is executed once per node.
- `commit`: the store's single synced write batch (block, seal, tx index, state writes, tip).
- `apply_synced`: a block fetched from a peer: its seal is checked against the genesis
  validators first, then it is validated like a proposal (without the clock rule) and committed.

The methods are synchronous and may take a while; the node calls them from a worker thread,
one at a time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ledger import (
    Application,
    Block,
    BlockContext,
    BlockHeader,
    Genesis,
    Seal,
    Store,
    Tip,
    Transaction,
    TxResult,
    decode,
    next_state_root,
    tx_root,
    verify_seal,
    verify_transactions,
)
from ledger.errors import VerificationError

MAX_FUTURE_MS = 30_000
MAX_REBUILDS = 8

# `validate` verdicts that, for a block whose seal checks out, are this node's fault and not
# the sender's: a quorum (with at least one honest validator in it) validated the same block
# on the same history, and the body matches the sealed header. A body that does not
# (`tx_root`, `tx_count`) or another height (`wrong_height`) is the peer's doing instead.
DIVERGENCE_CODES = frozenset({"bad_link", "bad_time", "bad_validators", "bad_proposer",
                              "bad_tx_signature", "tx_rejected", "bad_state_root"})
DIVERGED = "diverged"


@dataclass(frozen=True, slots=True, kw_only=True)
class Built:
    block: Block
    writes: dict[bytes, bytes | None]
    rejected: list[TxResult]


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    ok: bool
    code: str = "ok"
    reason: str = ""


def now_ms() -> int:
    return int(time.time() * 1000)


def state_next_nonce(store: Store, signer: bytes) -> int:
    """The next nonce the committed state expects from `signer` (the provenance app's rule:
    nonces start at 0 and the last used one is stored under `nonce/<signer>`)."""
    raw = store.get(b"nonce/" + signer)
    if raw is None:
        return 0
    last = decode(raw)
    return int(last) + 1 if isinstance(last, int) else 0


class CommittedNonces:
    """`state_next_nonce`, remembered until the store's height changes.

    The mempool asks for a signer's next nonce for every batch it admits (API batches and
    fan-out from peers, each of a few to a few hundred transactions from many signers), and
    each answer is a store read and a decode. The committed state changes only with the
    height, so the answers stay exact while the height stays the same."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._height = -1
        self._next: dict[bytes, int] = {}

    def __call__(self, signer: bytes) -> int:
        if self.store.height != self._height:
            self._next.clear()
            self._height = self.store.height
        n = self._next.get(signer)
        if n is None:
            n = self._next[signer] = state_next_nonce(self.store, signer)
        return n


class Executor:
    def __init__(self, store: Store, app: Application, genesis: Genesis, *,
                 clock_ms: Callable[[], int] = now_ms) -> None:
        self.store, self.app, self.genesis = store, app, genesis
        self._clock_ms = clock_ms
        self._validators = set(genesis.validators)
        # block hash -> (writes, state root after them), from build/validate, used by commit
        self._pending: dict[bytes, tuple[dict[bytes, bytes | None], bytes]] = {}
        self._last_time_ms = self._tip_time_ms()

    def _tip_time_ms(self) -> int:
        tip = self.store.tip()
        if tip is None:
            return self.genesis.genesis_time_ms
        header = self.store.header(tip.height)
        assert header is not None
        return header.time_ms

    def head(self) -> Tip:
        return self.store.head()

    def _execute(self, head: Tip, *, height: int, time_ms: int, proposer: bytes,
                 txs: Sequence[Transaction]) -> tuple[dict[bytes, bytes | None], list[TxResult]]:
        ctx = BlockContext(chain=self.genesis.chain_id, height=height, time_ms=time_ms,
                           proposer=proposer)
        ex = self.app.execute(self.store, ctx, list(txs))
        return dict(ex.writes), list(ex.results)

    # -- proposer -----------------------------------------------------------------------------
    def build(self, *, proposer: bytes, candidates: Sequence[Transaction],
              time_ms: int | None = None) -> Built:
        head = self.head()
        height = head.height + 1
        t = max(self._clock_ms() if time_ms is None else time_ms, self._last_time_ms)
        txs = list(candidates)
        rejected: list[TxResult] = []
        for _ in range(MAX_REBUILDS):
            writes, results = self._execute(head, height=height, time_ms=t, proposer=proposer,
                                            txs=txs)
            bad = [r for r in results if not r.ok]
            if not bad:
                break
            rejected.extend(bad)
            bad_ids = {r.tx_id for r in bad}
            txs = [tx for tx in txs if tx.tx_id not in bad_ids]
        else:  # pragma: no cover - would need a state machine whose verdicts keep changing
            txs, writes = [], {}
        header = BlockHeader(chain=self.genesis.chain_id, height=height, prev_hash=head.block_hash,
                             time_ms=t, proposer=proposer, tx_root=tx_root(txs),
                             tx_count=len(txs), state_root=next_state_root(head.state_root, writes),
                             validators_hash=self.genesis.validators_hash)
        block = Block(header=header, txs=tuple(txs))
        self._remember(block.hash, writes, header.state_root)
        return Built(block=block, writes=writes, rejected=rejected)

    # -- validators ---------------------------------------------------------------------------
    def validate(self, block: Block, *, unverified: Sequence[Transaction] | None = None,
                 check_clock: bool = True) -> Verdict:
        """Would this node vote for `block` as the next block? Keeps its writes for commit.

        `unverified`: the block's transactions whose signatures were not checked here yet
        (None: all of them).
        """
        head = self.head()
        h = block.header
        problems = [
            (h.chain != self.genesis.chain_id, "wrong_chain", "the block is for another chain"),
            (h.height != head.height + 1, "wrong_height",
             f"height {h.height} does not follow the tip {head.height}"),
            (h.prev_hash != head.block_hash, "bad_link", "prev_hash is not the tip's hash"),
            (h.validators_hash != self.genesis.validators_hash, "bad_validators",
             "validators_hash is not the genesis validator set's"),
            (h.proposer not in self._validators, "bad_proposer",
             "the proposer is not a validator"),
            (h.time_ms < self._last_time_ms, "bad_time",
             "the block's time is before its predecessor's"),
            (check_clock and h.time_ms > self._clock_ms() + MAX_FUTURE_MS, "bad_time",
             "the block's time is too far in the future"),
        ]
        for failed, code, reason in problems:
            if failed:
                return Verdict(ok=False, code=code, reason=reason)
        try:
            block.check_body()
        except VerificationError as exc:
            return Verdict(ok=False, code=exc.code, reason=exc.message)
        unchecked = block.txs if unverified is None else unverified
        if unchecked:
            for tx, ok in zip(unchecked, verify_transactions(unchecked), strict=True):
                if not ok:
                    return Verdict(ok=False, code="bad_tx_signature",
                                   reason=f"transaction {tx.tx_id.hex()} has a bad signature")
        writes, results = self._execute(head, height=h.height, time_ms=h.time_ms,
                                        proposer=h.proposer, txs=block.txs)
        for r in results:
            if not r.ok:
                return Verdict(ok=False, code="tx_rejected",
                               reason=f"transaction {r.tx_id.hex()} is rejected: {r.reason}")
        if next_state_root(head.state_root, writes) != h.state_root:
            return Verdict(ok=False, code="bad_state_root",
                           reason="the header's state root differs from this node's execution")
        self._remember(block.hash, writes, h.state_root)
        return Verdict(ok=True)

    def _remember(self, block_hash: bytes, writes: dict[bytes, bytes | None],
                  root: bytes) -> None:
        if len(self._pending) > 16:
            self._pending.clear()
        self._pending[block_hash] = (writes, root)

    # -- commit -------------------------------------------------------------------------------
    def commit(self, block: Block, seal: Seal) -> Tip:
        """Store `block` (already agreed by consensus) with `seal`, durably.

        Raises:
            VerificationError: the block does not validate here (this node would have refused
                it; with a valid seal that means the application diverged, so stop).
            StoreError: the store refuses it.
        """
        pending = self._pending.pop(block.hash, None)
        if pending is None or block.height != self.head().height + 1:
            verdict = self.validate(block, check_clock=False)
            if not verdict.ok:
                raise VerificationError(f"committed block {block.height} does not execute "
                                        f"here: {verdict.reason}", code=verdict.code)
            pending = self._pending.pop(block.hash)
        writes, root = pending
        tip = self.store.commit_block(block, seal, writes, writes_root=root)
        self._last_time_ms = block.header.time_ms
        self._pending.clear()
        return tip

    def apply_synced(self, block_bytes: bytes | Block, seal_bytes: bytes
                     ) -> tuple[Block, Seal, Tip]:
        """Check a block fetched from a peer (seal first) and commit it (`block_bytes` may be
        the block already decoded from those bytes).

        Raises:
            DecodeError, VerificationError: the peer sent something that does not check out;
                code `diverged` when the block is sealed and is the next one but does not
                execute here (the node must stop, as when consensus commits such a block).
        """
        block = block_bytes if isinstance(block_bytes, Block) else Block.decode(block_bytes)
        seal = Seal.decode(seal_bytes)
        verify_seal(seal, chain=self.genesis.chain_id, block_hash=block.hash,
                    height=block.height, validators=self.genesis.validators)
        verdict = self.validate(block, check_clock=False)
        if verdict.code in DIVERGENCE_CODES:
            raise VerificationError(
                f"block {block.height}, sealed by a quorum of validators, does not execute "
                f"here ({verdict.reason}): this node's ledger has diverged from the "
                "consortium's", code=DIVERGED)
        if not verdict.ok:
            raise VerificationError(f"synced block {block.height}: {verdict.reason}",
                                    code=verdict.code)
        return block, seal, self.commit(block, seal)

