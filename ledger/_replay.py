"""Auditor replay: re-verify a whole chain from its genesis file, trusting nothing else.

For each height, in order: the block decodes; its height, chain, `prev_hash`, `validators_hash`,
proposer (a validator) and time (not before the previous block) are right; `tx_count` and
`tx_root` match the body; no transaction id repeats; every transaction signature verifies (in
batches across blocks, through `ledger.verify_transactions`); the seal finalises the block under
the genesis validators (`ledger.verify_seal`); re-executing the block with the application
accepts every transaction and gives the header's state root. When replaying a store, the store's
own recorded state roots and hash index must match the replayed blocks and, at the end, its
transaction index (read in one sequential pass after the last block, inside the timed replay)
and its application state must match the replayed ones.

The first problem ends the replay with a `ReplayError` naming the height, the transaction (if
any), a reason and a machine-readable code.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

from ledger._app import EMPTY_ROOT, Application, BlockContext, next_state_root
from ledger._block import Block, Seal, verify_seal
from ledger._genesis import Genesis
from ledger._memstate import MemState
from ledger._store import Store
from ledger._tx import verify_transactions
from ledger.errors import PartledgerError, VerificationError

SIG_BATCH_TXS = 4096
WINDOW_BLOCKS_MAX = 256
# Young-generation threshold of the cyclic collector while executing blocks in bulk: during a
# replay (`_rare_collections`) and for a whole node process (`cli.node._node.tune_collector`).
GC_YOUNG_THRESHOLD = 100_000


class ReplayError(VerificationError):
    """Replay found a problem at `height` (0: before the first block), maybe in `tx`."""

    def __init__(self, message: str, *, height: int, code: str, tx: bytes | None = None) -> None:
        super().__init__(message, code=code)
        self.height = height
        self.tx = tx

    def to_json(self) -> dict[str, object]:
        return {"ok": False, "height": self.height, "tx": self.tx.hex() if self.tx else None,
                "reason": self.message, "code": self.code}


@dataclass
class ReplayReport:
    height: int = 0
    blocks: int = 0
    txs: int = 0
    seconds: float = 0.0
    state_root: bytes = EMPTY_ROOT
    state_checked: bool = True

    def to_json(self) -> dict[str, object]:
        return {"ok": True, "height": self.height, "blocks": self.blocks, "txs": self.txs,
                "seconds": round(self.seconds, 3), "state_root": self.state_root.hex(),
                "state_checked": self.state_checked}


Progress = Callable[[int, int], None]  # (height done, txs done)
RecordSource = Iterable[tuple[int, bytes, bytes]]  # (height, block bytes, seal bytes)


@dataclass
class _Pending:
    height: int
    block: Block
    error: ReplayError | None = None


@dataclass
class _Checked:
    """A window whose blocks passed the structural checks (up to `failure`, if any)."""

    pending: list[_Pending]
    failure: ReplayError | None
    verdicts: Future[list[bool]] | list[bool]


@dataclass
class _Replayer:
    genesis: Genesis
    app: Application | None
    stored_roots: Callable[[int], bytes | None] | None
    progress: Progress | None
    on_block: Callable[[Block], None] | None = None
    report: ReplayReport = field(default_factory=ReplayReport)
    state: MemState = field(default_factory=MemState)
    prev_hash: bytes = b""
    prev_time: int = 0
    root: bytes = EMPTY_ROOT
    # tx id -> height << 32 | index in its block, in chain order
    seen: dict[bytes, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        g = self.genesis
        self.prev_hash, self.prev_time = g.chain_id, g.genesis_time_ms
        self.vset = set(g.validators)
        if self.app is not None:
            writes = self.app.genesis_writes(g)
            self.state.apply(writes)
            self.root = next_state_root(EMPTY_ROOT, writes)
            if self.stored_roots is not None:
                stored = self.stored_roots(0)
                if stored != self.root:
                    raise ReplayError("the store's genesis state root differs from the one "
                                      "this genesis and application give", height=0,
                                      code="genesis_state_root")
        else:
            self.report.state_checked = False

    # structural checks of one block, in order; the first failure is returned, not raised
    def check_structure(self, height: int, raw_block: bytes, raw_seal: bytes,
                        ) -> tuple[Block | None, ReplayError | None]:
        g = self.genesis
        try:
            block = Block.decode(raw_block)
        except PartledgerError as exc:
            return None, ReplayError(f"block {height} does not decode: {exc.message}",
                                     height=height, code=exc.code)
        h = block.header
        err: str | None = None
        code = "header"
        if h.height != height:
            err, code = f"block at position {height} says height {h.height}", "height"
        elif h.chain != g.chain_id:
            err, code = "block is for another chain", "wrong_chain"
        elif h.prev_hash != self.prev_hash:
            err, code = "prev_hash does not match the previous block", "bad_link"
        elif h.validators_hash != g.validators_hash:
            err, code = "validators_hash is not the genesis validator set", "validators_hash"
        elif h.proposer not in self.vset:
            err, code = "proposer is not a validator", "bad_proposer"
        elif h.time_ms < self.prev_time:
            err, code = f"time {h.time_ms} goes back before {self.prev_time}", "time"
        if err is not None:
            return block, ReplayError(f"block {height}: {err}", height=height, code=code)
        try:
            block.check_body()
            seal = Seal.decode(raw_seal)
            verify_seal(seal, chain=g.chain_id, block_hash=block.hash, height=height,
                        validators=g.validators)
        except PartledgerError as exc:
            return block, ReplayError(f"block {height}: {exc.message}", height=height,
                                      code=exc.code)
        seen = self.seen
        loc = height << 32
        for tx in block.txs:
            if tx.tx_id in seen:
                return block, ReplayError(f"block {height}: transaction {tx.tx_id.hex()} "
                                          "appears a second time", height=height,
                                          code="duplicate_tx", tx=tx.tx_id)
            seen[tx.tx_id] = loc
            loc += 1
        self.prev_hash, self.prev_time = block.hash, h.time_ms
        return block, None

    def execute(self, block: Block) -> None:
        h = block.header
        if self.app is not None:
            ctx = BlockContext(chain=h.chain, height=h.height, time_ms=h.time_ms,
                               proposer=h.proposer)
            try:
                ex = self.app.execute(self.state, ctx, list(block.txs))
            except PartledgerError as exc:
                raise ReplayError(f"block {h.height}: executing it failed: {exc.message}",
                                  height=h.height, code=exc.code) from exc
            for r in ex.results:
                if not r.ok:
                    raise ReplayError(f"block {h.height}: transaction {r.tx_id.hex()} is "
                                      f"rejected by the state machine: {r.reason}",
                                      height=h.height, code=f"tx_rejected:{r.code}", tx=r.tx_id)
            root = next_state_root(self.root, ex.writes)
            if root != h.state_root:
                raise ReplayError(f"block {h.height}: state root after re-execution differs "
                                  "from the header's (the state machine disagrees: another "
                                  "version of it, or non-deterministic execution)",
                                  height=h.height, code="state_root")
            self.state.apply(ex.writes)
            self.root = root
        else:
            self.root = h.state_root
        if self.stored_roots is not None and self.stored_roots(h.height) != h.state_root:
            raise ReplayError(f"block {h.height}: the store's recorded state root differs from "
                              "the header's", height=h.height, code="stored_state_root")
        if self.on_block is not None:
            self.on_block(block)
        self.report.height = h.height
        self.report.blocks += 1
        self.report.txs += len(block.txs)

    def run_window(self, window: list[tuple[int, bytes, bytes]]) -> None:
        self.finish_window(self.check_window(window, None))

    def check_window(self, window: list[tuple[int, bytes, bytes]],
                     pool: ThreadPoolExecutor | None) -> _Checked:
        """Structural checks of a window's blocks, in order, up to the first failure; their
        signatures are then verified on `pool` (or here without one)."""
        pending: list[_Pending] = []
        failure: ReplayError | None = None
        for height, rb, rs in window:
            block, err = self.check_structure(height, rb, rs)
            if err is not None:
                failure = err
                break
            assert block is not None
            pending.append(_Pending(height, block))
        txs = [tx for p in pending for tx in p.block.txs]
        verdicts: Future[list[bool]] | list[bool]
        if pool is not None and txs:
            verdicts = pool.submit(verify_transactions, txs)
        else:
            verdicts = verify_transactions(txs) if txs else []
        return _Checked(pending, failure, verdicts)

    def finish_window(self, checked: _Checked) -> None:
        """Signature verdicts, then execution, of a checked window; then its failure, if any
        (a failure at an earlier height is raised first)."""
        v = checked.verdicts
        verdicts = v.result() if isinstance(v, Future) else v
        i = 0
        for p in checked.pending:
            for tx in p.block.txs:
                if not verdicts[i]:
                    raise ReplayError(f"block {p.height}: transaction {tx.tx_id.hex()} has a bad "
                                      "signature", height=p.height, code="bad_tx_signature",
                                      tx=tx.tx_id)
                i += 1
            self.execute(p.block)
            if self.progress is not None:
                self.progress(self.report.height, self.report.txs)
        if checked.failure is not None:
            raise checked.failure


@contextmanager
def _rare_collections() -> Iterator[None]:
    """Replay keeps each window's decoded transactions (about 20 containers each) alive until
    they are executed, so with the default threshold (700 allocations) the cyclic collector
    ran every few transactions, promoted them, and every few blocks made a full pass over
    every tracked object (the seen-set of all transaction ids among them): about 12% of
    replay CPU. Replay makes no reference cycles of its own (its objects die by reference
    counting), so during it a collection starts only after `GC_YOUNG_THRESHOLD` more
    container allocations than deallocations; the thresholds are restored afterwards."""
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], GC_YOUNG_THRESHOLD), old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def _replay(records: RecordSource, genesis: Genesis, app: Application | None, *,
            progress: Progress | None,
            stored_roots: Callable[[int], bytes | None] | None,
            on_block: Callable[[Block], None] | None = None,
            at_end: Callable[[dict[bytes, int]], None] | None = None,
            ) -> tuple[ReplayReport, MemState]:
    with _rare_collections():
        return _replay_windows(records, genesis, app, progress=progress,
                               stored_roots=stored_roots, on_block=on_block, at_end=at_end)


def _replay_windows(records: RecordSource, genesis: Genesis, app: Application | None, *,
                    progress: Progress | None,
                    stored_roots: Callable[[int], bytes | None] | None,
                    on_block: Callable[[Block], None] | None,
                    at_end: Callable[[dict[bytes, int]], None] | None,
                    ) -> tuple[ReplayReport, MemState]:
    """Windows of blocks through a two-stage pipeline: while window N executes (Python, on
    this thread), window N+1 has been decoded and checked and its signatures verify on the
    native thread pool (GIL released), so verification overlaps execution instead of
    following it. Failures still surface in height order."""
    t0 = time.perf_counter()
    r = _Replayer(genesis, app, stored_roots, progress, on_block)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay-verify") as pool:
        _pipeline(r, iter(records), pool)
    if at_end is not None:
        at_end(r.seen)
    r.report.seconds = time.perf_counter() - t0
    r.report.state_root = r.root
    return r.report, r.state


def _pipeline(r: _Replayer, it: Iterator[tuple[int, bytes, bytes]],
              pool: ThreadPoolExecutor, first: int = 1) -> None:
    expected = first
    done = False
    prev: _Checked | None = None
    while not done:
        window: list[tuple[int, bytes, bytes]] = []
        size = 0
        read_error: ReplayError | None = None
        while size < SIG_BATCH_TXS and len(window) < WINDOW_BLOCKS_MAX:
            try:
                rec = next(it)
            except StopIteration:
                done = True
                break
            except ReplayError as exc:
                read_error = exc
                break
            except PartledgerError as exc:
                read_error = ReplayError(f"reading block {expected}: {exc.message}",
                                         height=expected, code=exc.code)
                break
            if rec[0] != expected:
                read_error = ReplayError(f"expected block {expected}, found {rec[0]}",
                                         height=expected, code="height")
                break
            window.append(rec)
            expected += 1
            size += max(1, len(rec[1]) // 400)  # about one transaction per 400 bytes
        cur = r.check_window(window, pool)
        if cur.failure is None:
            cur.failure = read_error  # after this window's blocks
        if cur.failure is not None:
            done = True
        if prev is not None:
            r.finish_window(prev)  # raises a failure at an earlier height first
        prev = cur
    if prev is not None:
        r.finish_window(prev)


def replay_records(records: RecordSource, genesis: Genesis, app: Application | None, *,
                   progress: Progress | None = None,
                   stored_roots: Callable[[int], bytes | None] | None = None) -> ReplayReport:
    """Replay `(height, block bytes, seal bytes)` records from height 1 upwards.

    Raises:
        ReplayError: the first problem, naming height, transaction and reason.
    """
    return _replay(records, genesis, app, progress=progress, stored_roots=stored_roots)[0]


def replay_store(store: Store, genesis: Genesis, app: Application | None, *,
                 progress: Progress | None = None) -> ReplayReport:
    """Replay every block of `store`; its recorded state roots and, at the end, its whole
    application state must equal the replayed ones.

    Raises:
        ReplayError: the first problem (store read errors are reported at their height).
    """
    if store.chain_id != genesis.chain_id:
        raise ReplayError("the store belongs to another chain than this genesis", height=0,
                          code="store_chain_mismatch")
    tip = store.height

    def records() -> Iterator[tuple[int, bytes, bytes]]:
        for h in range(1, tip + 1):
            b, s = store.block_raw(h), store.seal_raw(h)
            if b is None or s is None:
                raise ReplayError(f"the store lacks block or seal {h}", height=h,
                                  code="store_inconsistent")
            yield h, b, s

    headers = 0  # stored header copies (`d/`; stores written before them have none)

    def check_hash_index(block: Block) -> None:
        nonlocal headers
        h = block.height
        if store.height_of(block.hash) != h:
            raise ReplayError(f"block {h}: the store's hash index does not point to it",
                              height=h, code="store_index")
        copy = store.header_raw(h)
        if copy is not None:
            if copy != block.header.encode():
                raise ReplayError(f"block {h}: the store's copy of its header differs from "
                                  "the block's", height=h, code="store_header")
            headers += 1

    def check_tx_index(seen: dict[bytes, int]) -> None:
        """Every replayed transaction has exactly its (height, index) entry: one sequential
        pass over the index (a random read per transaction cost about 14 us each on the 1M
        chain, the same order as executing it)."""
        try:
            entries = 0
            for tx_id, h, i in store.iter_tx_index():
                loc = seen.get(tx_id)
                if loc != (h << 32 | i):
                    if loc is None:
                        raise ReplayError(f"the store's transaction index names {tx_id.hex()}, "
                                          "which no block holds", height=tip,
                                          code="store_index", tx=tx_id)
                    raise _tx_index_error(loc >> 32, tx_id)
                entries += 1
            if entries != len(seen):  # name the first transaction without an entry
                for tx_id, loc in seen.items():
                    if store.tx_location(tx_id) is None:
                        raise _tx_index_error(loc >> 32, tx_id)
        except ReplayError:
            raise
        except PartledgerError as exc:
            raise ReplayError(f"reading the store's transaction index: {exc.message}",
                              height=tip, code=exc.code) from exc

    report, state = _replay(records(), genesis, app, progress=progress,
                            stored_roots=store.state_root, on_block=check_hash_index,
                            at_end=check_tx_index)
    try:  # read every entry once: a damaged table anywhere fails here, and no key is extra
        counts = store.key_counts()
        same_state = app is None or _same_state(store, state)
    except PartledgerError as exc:
        raise ReplayError(f"reading the store: {exc.message}", height=tip,
                          code=exc.code) from exc
    expected = {b"b/": tip, b"c/": tip, b"d/": headers, b"h/": tip, b"r/": tip + 1,
                b"x/": report.txs, b"m/": 3 if tip else 2}
    if app is not None:
        expected[b"s/"] = len(state)
    for fam, n in sorted(counts.items()):
        if expected.get(fam, 0) != n and not (fam == b"s/" and app is None):
            raise ReplayError(f"the store holds {n} {fam.decode(errors='replace')!r} entries, "
                              f"{expected.get(fam, 0)} expected", height=tip,
                              code="store_extra_entries")
    if not same_state:
        try:
            stored = dict(store.iter_prefix(b""))
        except PartledgerError as exc:
            raise ReplayError(f"reading the store: {exc.message}", height=tip,
                              code=exc.code) from exc
        diff = sorted(set(stored.items()) ^ set(state.items().items()))
        raise ReplayError(f"the store's state differs from the replayed state at "
                          f"{len(diff)} entries (first key {diff[0][0]!r})", height=tip,
                          code="stored_state")
    return report


def _same_state(store: Store, state: MemState) -> bool:
    """The store's application state equals `state`, compared entry by entry as the store is
    read (no copy of either: on the 1M chain each is about a gigabyte of Python objects)."""
    get = state.get
    n = 0
    for k, v in store.iter_prefix(b""):
        if get(k) != v:
            return False
        n += 1
    return n == len(state)


def _tx_index_error(height: int, tx_id: bytes) -> ReplayError:
    return ReplayError(f"block {height}: the store's transaction index is wrong for "
                       f"{tx_id.hex()}", height=height, code="store_index", tx=tx_id)


def replay_export(reader: object, genesis: Genesis, app: Application | None, *,
                  progress: Progress | None = None) -> ReplayReport:
    """Replay an `ExportReader` (see `ledger._export`)."""
    from ledger._export import ExportReader

    assert isinstance(reader, ExportReader)
    if reader.chain_id != genesis.chain_id:
        raise ReplayError("the export file belongs to another chain than this genesis",
                          height=0, code="wrong_chain")
    report = replay_records(reader.blocks(), genesis, app, progress=progress)
    if report.height != reader.count:  # pragma: no cover - blocks() enforces the count
        raise ReplayError("export file ended early", height=report.height + 1,
                          code="export_truncated")
    return report
