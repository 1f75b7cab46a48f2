"""The mempool: transactions that passed admission and wait for a block.

Admission (`add`) checks, in this order, and rejects with a reason code: size, chain id,
duplicate (pending), nonce (used: "already committed" when the transaction itself is in a block;
already pending from the same signer; too far ahead), capacity (count and bytes). The
committed-transaction lookup is made only for a used nonce: a committed transaction's nonce is
always used, and on a large ledger every lookup of an id that is not there costs LevelDB a read
charged against its tables (enough of them trigger a compaction). Signatures are checked in one batch for everything
new in a submission (`ledger.verify_transactions`), so each transaction is verified once per node:
a block proposal whose transactions are byte-identical to pending ones skips re-verifying them.

Nonces are per signer and strictly sequential (the state machine's rule). A transaction whose
nonce is ahead of the signer's next one is kept (up to `max_nonce_gap` beyond the end of
its contiguous pending run): with several API
nodes, nonce n+1 can reach a node before nonce n does. Proposals (`select`) take transactions in
arrival order, each signer's in nonce order with no gap.

Rejections are remembered (bounded, oldest forgotten first) so `tx status` can say why.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ledger import Transaction, verify_transactions
from ledger._frozen import positional_constructor

NonceLookup = Callable[[bytes], int]  # signer -> the next nonce the committed state expects
CommittedLookup = Callable[[bytes], bool]  # tx id -> already in a committed block?


@dataclass(frozen=True, slots=True, kw_only=True)
class Admission:
    tx_id: bytes
    ok: bool
    code: str = "pending"
    reason: str = ""


# one per transaction per node: the fast constructor (ledger/_frozen.py)
_new_admission = positional_constructor(Admission, "tx_id", "ok")


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejection:
    code: str
    reason: str
    height: int | None = None  # the height at which a proposal rejected it, if any


@dataclass(frozen=True, slots=True, kw_only=True)
class MempoolStatistics:
    size: int
    bytes: int
    admitted: int
    rejected: int
    removed_committed: int


class Mempool:
    def __init__(self, *, chain_id: bytes, next_nonce: NonceLookup, committed: CommittedLookup,
                 max_txs: int, max_bytes: int, max_tx_bytes: int, max_nonce_gap: int,
                 recent_rejections: int = 100_000) -> None:
        self.chain_id = chain_id
        self._next_nonce = next_nonce
        self._committed = committed
        self.max_txs, self.max_bytes = max_txs, max_bytes
        self.max_tx_bytes, self.max_nonce_gap = max_tx_bytes, max_nonce_gap
        self._txs: dict[bytes, Transaction] = {}  # insertion order = arrival order
        self._by_signer: dict[bytes, dict[int, bytes]] = {}
        self._run_end: dict[bytes, int] = {}  # signer -> end of its contiguous pending run
        self._bytes = 0
        self._rejected: OrderedDict[bytes, Rejection] = OrderedDict()
        self._max_rejected = recent_rejections
        self._admitted = self._n_rejected = self._removed = 0

    # -- queries ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._txs)

    def __contains__(self, tx_id: bytes) -> bool:
        return tx_id in self._txs

    def oldest(self) -> bytes | None:
        """The id of the transaction that has been pending longest."""
        return next(iter(self._txs), None)

    def get(self, tx_id: bytes) -> Transaction | None:
        return self._txs.get(tx_id)

    def rejection(self, tx_id: bytes) -> Rejection | None:
        return self._rejected.get(tx_id)

    def next_nonce(self, signer: bytes) -> int:
        """The nonce a new transaction of `signer` should use, counting pending ones."""
        n = self._next_nonce(signer)
        pending = self._by_signer.get(signer, {})
        while n in pending:
            n += 1
        return n

    def held(self, txs: Sequence[Transaction]) -> list[bool]:
        """For each of `txs`: was it (the same bytes) admitted here, i.e. is its signature
        already checked? One pass for a whole submission or proposal."""
        get = self._txs.get
        out = []
        for tx in txs:
            mine = get(tx.tx_id)
            # a proposal rebuilt here holds the mempool's own objects: no bytes to compare
            out.append(mine is not None and (mine is tx or mine.encode() == tx.encode()))
        return out

    def statistics(self) -> MempoolStatistics:
        return MempoolStatistics(size=len(self._txs), bytes=self._bytes,
                                 admitted=self._admitted, rejected=self._n_rejected,
                                 removed_committed=self._removed)

    # -- admission ----------------------------------------------------------------------------
    def add(self, txs: Sequence[Transaction], *,
            signatures_ok: Sequence[bool] | None = None) -> list[Admission]:
        """Admit what passes; one verdict per transaction, in order.

        `signatures_ok[i]`, when given, is the verdict of `ledger.verify_transactions` on
        `txs[i]` computed by the caller (e.g. in a worker thread); otherwise the signatures of
        the transactions that pass the other checks are verified here, in one batch.
        """
        # signer -> the state's next nonce: the state cannot change during this synchronous
        # call, and a batch repeats signers (each lookup is a store read and a decode)
        state_nonces: dict[bytes, int] = {}
        verdicts: list[Admission | None] = []
        fresh: list[int] = []
        for i, tx in enumerate(txs):
            early = self._precheck(tx)
            verdicts.append(early)
            if early is None:
                fresh.append(i)
        if fresh:
            if signatures_ok is not None:
                sig_ok = [signatures_ok[i] for i in fresh]
            else:
                sig_ok = verify_transactions([txs[i] for i in fresh])
            for i, ok in zip(fresh, sig_ok, strict=True):
                tx = txs[i]
                if not ok:
                    verdicts[i] = self._reject(tx.tx_id, "bad_signature",
                                               "the signature does not verify")
                    continue
                verdicts[i] = self._insert(tx, state_nonces)
        out = [v for v in verdicts if v is not None]
        assert len(out) == len(txs)
        return out

    def _precheck(self, tx: Transaction) -> Admission | None:
        size = len(tx.encode())
        if size > self.max_tx_bytes:
            return self._reject(tx.tx_id, "tx_too_large",
                                f"{size} bytes is over the limit of {self.max_tx_bytes}")
        if tx.chain != self.chain_id:
            return self._reject(tx.tx_id, "wrong_chain", "the transaction is for another chain",
                                remember=False)
        if tx.tx_id in self._txs:
            return Admission(tx_id=tx.tx_id, ok=True, code="duplicate",
                             reason="already pending")
        return None

    def _insert(self, tx: Transaction, state_nonces: dict[bytes, int]) -> Admission:
        # Re-checked after the signature batch: an earlier tx of the same batch may have
        # taken the nonce or the space.
        if tx.tx_id in self._txs:
            return Admission(tx_id=tx.tx_id, ok=True, code="duplicate", reason="already pending")
        state_next = state_nonces.get(tx.signer)
        if state_next is None:
            state_next = state_nonces[tx.signer] = self._next_nonce(tx.signer)
        if tx.nonce < state_next:
            if self._committed(tx.tx_id):
                return Admission(tx_id=tx.tx_id, ok=False, code="already_committed",
                                 reason="already in a committed block")
            return self._reject(tx.tx_id, "nonce_used",
                                f"nonce {tx.nonce} is already used (next is {state_next})")
        pending = self._by_signer.setdefault(tx.signer, {})
        if tx.nonce in pending:
            return self._reject(tx.tx_id, "nonce_pending",
                                f"another transaction with nonce {tx.nonce} from this signer "
                                "is pending", remember=False)
        contiguous = state_next
        if tx.nonce > state_next + self.max_nonce_gap:  # only then is the run's end needed
            contiguous = max(state_next, self._run_end.get(tx.signer, 0))
            while contiguous in pending:
                contiguous += 1
            self._run_end[tx.signer] = contiguous
        if tx.nonce > contiguous + self.max_nonce_gap:
            return self._reject(tx.tx_id, "nonce_too_far",
                                f"nonce {tx.nonce} is more than {self.max_nonce_gap} ahead of "
                                f"the signer's next nonce {contiguous}", remember=False)
        size = len(tx.encode())
        if len(self._txs) >= self.max_txs or self._bytes + size > self.max_bytes:
            return self._reject(tx.tx_id, "mempool_full", "the mempool is full; retry later",
                                remember=False)
        self._txs[tx.tx_id] = tx
        pending[tx.nonce] = tx.tx_id
        self._bytes += size
        self._admitted += 1
        self._rejected.pop(tx.tx_id, None)
        return _new_admission(tx.tx_id, True)

    def _reject(self, tx_id: bytes, code: str, reason: str, *, remember: bool = True,
                height: int | None = None) -> Admission:
        self._n_rejected += 1
        if remember:
            self.remember_rejection(tx_id, Rejection(code=code, reason=reason, height=height))
        return Admission(tx_id=tx_id, ok=False, code=code, reason=reason)

    def remember_rejection(self, tx_id: bytes, rejection: Rejection) -> None:
        self._rejected[tx_id] = rejection
        self._rejected.move_to_end(tx_id)
        while len(self._rejected) > self._max_rejected:
            self._rejected.popitem(last=False)

    # -- proposals ----------------------------------------------------------------------------
    def select(self, *, max_txs: int, max_bytes: int) -> list[Transaction]:
        """Transactions for a proposal: arrival order, each signer's nonces without gaps."""
        out: list[Transaction] = []
        used = 0
        expected: dict[bytes, int] = {}
        taken: set[bytes] = set()
        for tx in self._txs.values():
            if len(out) >= max_txs:
                break
            if tx.tx_id in taken:
                continue
            nxt = expected.get(tx.signer)
            if nxt is None:
                nxt = self._next_nonce(tx.signer)
            if tx.nonce == nxt:
                pending = self._by_signer[tx.signer]
                while nxt in pending and len(out) < max_txs:
                    t = self._txs[pending[nxt]]
                    size = len(t.encode())
                    if out and used + size > max_bytes:
                        return out
                    out.append(t)
                    taken.add(t.tx_id)
                    used += size
                    nxt += 1
            expected[tx.signer] = nxt  # a gap, or a lower nonce still to come: wait
        return out

    # -- removal ------------------------------------------------------------------------------
    def remove(self, tx_ids: Iterable[bytes], *, committed: bool = True) -> None:
        pop, by_signer = self._txs.pop, self._by_signer
        removed = freed = 0
        for tx_id in tx_ids:
            tx = pop(tx_id, None)
            if tx is None:
                continue
            removed += 1
            freed += len(tx.encode())
            pending = by_signer.get(tx.signer)
            if pending is not None:
                pending.pop(tx.nonce, None)
                if not pending:
                    del by_signer[tx.signer]
                    self._run_end.pop(tx.signer, None)
        self._bytes -= freed
        if committed:
            self._removed += removed

    def reject(self, tx_id: bytes, code: str, reason: str, *, height: int | None = None) -> None:
        """A proposal found `tx_id` invalid: drop it and remember why."""
        if tx_id in self._txs:
            self.remove([tx_id], committed=False)
            self._reject(tx_id, code, reason, height=height)

    def prune_stale(self, signers: Iterable[bytes]) -> list[bytes]:
        """After a commit: drop pending txs of `signers` whose nonce is now used."""
        dropped = []
        for signer in set(signers):
            pending = self._by_signer.get(signer)
            if not pending:
                continue
            n = self._next_nonce(signer)
            for nonce in [k for k in pending if k < n]:
                tx_id = pending[nonce]
                dropped.append(tx_id)
                self.remove([tx_id], committed=False)
                self._reject(tx_id, "nonce_used",
                             f"nonce {nonce} was used by another committed transaction")
        return dropped
