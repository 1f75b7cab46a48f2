"""One node: a trio program that runs consensus over libp2p, executes and stores blocks.

Tasks (all children of one nursery; `Node.run` returns only when the node stops):

- **driver**: the only caller of `Core.step`. It takes inputs from one queue (consensus
  messages from peers, timer expiries, answers to its own requests) and executes the actions
  in order: `Persist` is written and fsynced before the next action runs (so before the vote it
  precedes leaves the node), `Commit` goes through the executor into the store's single synced
  batch, `ValidateProposal` runs the state machine on the proposed block.
- **pump**: moves consensus messages from the host's bounded inbox into the driver queue (and
  drops, counting, when the driver is far behind), records peers' tip announcements.
- **timer**: the core's one timer (`ScheduleTimeout` replaces it).
- **proposer**: answers `RequestProposalValue` once the block interval has passed (or a
  transaction arrives), so transactions are batched into blocks.
- **tx fan-out**: transactions admitted through the API are sent, in batches, to every other
  validator over the `tx` channel; transactions received that way go into the mempool.
- **compact proposals**: this node's proposals go out as header + transaction ids
  (`cli/node/_compact.py`); one received is rebuilt from the mempool (waiting briefly for the
  fan-out, then fetching what is still missing from the proposer) before the core sees it.
- **sync**: fetches blocks with seals by height range from peers that are ahead, checks each
  seal against the genesis validators, executes and stores them, then tells the core.
- **announcer**: tells every member this node's tip height now and then and after each commit;
  observers (members without the validator role) run no consensus and follow by sync.

Blocking work (executing blocks, verifying signatures, LevelDB writes) runs in a worker thread
under one lock, so the event loop keeps serving the network and the API meanwhile.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import trio

from cli.node._byzantine import Byzantine
from cli.node._compact import (
    TXS_PROTOCOL,
    decode_tx_request,
    decode_tx_response,
    encode_tx_request,
    make_compact,
    missing_ids,
    parse_compact,
    rebuild,
)
from cli.node._config import NodeConfig
from cli.node._executor import DIVERGED, CommittedNonces, Executor
from cli.node._mempool import Admission, Mempool, Rejection
from cli.node._offload import Offload
from cli.node._persist import ConsensusStateWriter, load_consensus_state
from consensus import _events as ev
from consensus._core import Config as CoreConfig
from consensus._core import Core
from ledger import (
    Application,
    Block,
    Genesis,
    Home,
    Seal,
    SigningKey,
    Store,
    Transaction,
    decode,
    sha256,
    verify_transactions,
)
from ledger import encode as encode_value
from ledger.errors import DecodeError, PartledgerError, StoreError, VerificationError
from p2p import Host, HostOptions, Inbound, Member, open_host

log = logging.getLogger("partledger.node")
T = TypeVar("T")

CH_CONSENSUS = "consensus"
CH_TX = "tx"
KIND_CORE = "c"
KIND_TIP = "tip"
KIND_TXS = "txs"
KIND_COMPACT = "cp"
SYNC_PROTOCOL = "sync"
DRIVER_QUEUE_MAX = 20_000
# Batches this large are verified in a worker thread, smaller ones on the loop (the verifier
# releases the GIL either way). 512 signatures take about 7 ms here, under the 10 ms that
# `Offload` allows a call on the loop; handing each batch of 32 or more to a thread, as before
# the tenth session, cost 3% of saturated throughput in the thread handoffs (A/B, 3 pairs).
THREADED_VERIFY_MIN = 512
# Decoded blocks kept by the digest of their bytes (`_hash_block`): a height asks for its
# proposal's block several times (hashed by the core, validated, committed, offered to peers
# that lack transactions), a round change for another; 4 cover a height and a few rounds. Each
# holds thousands of decoded transactions that the mempool has let go once committed (at 4,000
# transactions a block, about 6 MB a block with their bytes).
BLOCK_CACHE_SIZE = 4
# A proposal is sized so that building it takes at most this fraction of the round-0 timeout
# (at this node's measured execution cost per transaction), never fewer than PROPOSAL_MIN_TXS.
PROPOSAL_TIME_FRACTION = 0.1
PROPOSAL_MIN_TXS = 64
# After a commit the new tip is announced at once unless one went out this recently (busy
# chains commit many blocks a second; validators learn heights from consensus itself, and the
# periodic announcer keeps observers and laggards informed).
TIP_ANNOUNCE_MIN_S = 0.25
# A round whose proposer is a validator this node is not connected to (stopped, crashed, cut
# off) times out after this long instead of the full round timeout, as long as the node is
# connected to enough other validators for the round change to gather a quorum. Timers only
# decide when a node gives up on a round, never what it votes, so this cannot affect safety.
UNREACHABLE_PROPOSER_TIMEOUT_MS = 250
# Proposal messages at least this large go out compact (header + transaction ids). A received
# compact proposal whose transactions are not all in the mempool waits this long for the
# fan-out batches still being verified, then fetches the rest from the proposer; at most
# COMPACT_PENDING_PER_PEER from one proposer wait at once (it sends one per round; more are
# dropped, so a faulty validator that never answers fetches cannot hold back the others').
COMPACT_MIN_BYTES = 2048
COMPACT_WAIT_S = 0.05
COMPACT_PENDING_PER_PEER = 2


@dataclass(slots=True)
class SyncState:
    syncing: bool = False
    target_height: int = 0
    synced_blocks: int = 0
    last_error: str = ""


@dataclass(slots=True)
class Counters:
    blocks_committed: int = 0
    txs_committed: int = 0
    dropped_driver_full: int = 0
    evidence: int = 0
    proposals_built: int = 0
    proposals_refused: int = 0
    txs_fanned_out: int = 0
    txs_received: int = 0
    compact_sent: int = 0  # proposals sent as header + transaction ids
    compact_rebuilt: int = 0  # compact proposals received and rebuilt
    compact_fetched_txs: int = 0  # transactions fetched from a proposer to rebuild one
    compact_failed: int = 0  # compact proposals that could not be rebuilt (dropped)
    dropped_malformed: int = 0  # tx batches and tip announcements that did not decode
    last_commit_latency_ms: int = 0
    evidence_log: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitRecord:
    height: int
    block_hash: bytes
    tx_count: int
    committed_at: float


class Node:
    """Everything one node holds. Build with `Node.open(home, config)`; run with `run()`."""

    def __init__(self, *, home: Home, config: NodeConfig, genesis: Genesis, node_key: SigningKey,
                 app: Application, store: Store) -> None:
        self.home, self.config, self.genesis = home, config, genesis
        self.node_key = node_key
        self.app = app
        self.store = store
        self.member = genesis.member_by_node_key(node_key.public)
        if self.member is None:
            raise PartledgerError(f"the node key {node_key.public.hex()[:16]}… is not a member "
                                  "of this genesis", code="not_member")
        self.is_validator = node_key.public in genesis.validators
        self._other_validators = [v for v in genesis.validators if v != node_key.public]
        self.executor = Executor(store, app, genesis)
        mp = config.mempool
        self.mempool = Mempool(
            chain_id=genesis.chain_id, next_nonce=CommittedNonces(store),
            committed=lambda tx_id: store.tx_location(tx_id) is not None,
            max_txs=mp.max_txs, max_bytes=mp.max_bytes, max_tx_bytes=mp.max_tx_bytes,
            max_nonce_gap=mp.max_nonce_gap, recent_rejections=mp.recent_rejections)
        self.core: Core | None = None
        self._consensus_state: ConsensusStateWriter | None = None
        if self.is_validator:
            cfg = CoreConfig(chain=genesis.chain_id, validators=genesis.validators,
                             timeout_base_ms=genesis.consensus.timeout_ms,
                             hash_block=self._hash_block)
            persisted = load_consensus_state(home.consensus_dir)
            self.core = Core.restore(persisted, config=cfg, key=node_key,
                                     committed_height=store.height,
                                     recent_seals=recent_seals(store, cfg.recent_seals))
            # kept open: a save before each vote is then one write and one sync
            self._consensus_state = ConsensusStateWriter(home.consensus_dir)
        self.host: Host | None = None
        self.sync = SyncState()
        self.counters = Counters()
        self.peer_heights: dict[bytes, int] = {}
        self.api_url: str | None = None
        self.started_at = time.time()
        self.recent_commits: deque[CommitRecord] = deque(maxlen=64)
        self.commit_event = trio.Event()  # replaced after every commit (API long-polls)
        self._admitted_at: dict[bytes, float] = {}  # tx id -> monotonic time (latency metric)
        self._exec_lock = trio.Lock()
        self.offload = Offload()  # short blocking calls inline, long ones in threads
        self._internal: deque[ev.Input] = deque()
        self._queue_send, self._queue_recv = trio.open_memory_channel[ev.Input](math.inf)
        self._timer: tuple[float, ev.TimeoutFired] | None = None
        self._timer_changed = trio.Event()
        self._proposal_wanted: ev.RequestProposalValue | None = None
        self._proposal_changed = trio.Event()
        self._tx_out: list[bytes] = []
        self._tx_out_event = trio.Event()
        self._sync_wanted = trio.Event()
        self._sync_hint: bytes | None = None
        self._ahead_since: float | None = None
        self._block_cache: dict[bytes, Block] = {}
        # id(bytes) -> (the bytes, their SHA-256): see `_digest`
        self._digests: dict[int, tuple[bytes, bytes]] = {}
        self._mempool_grew = trio.Event()  # replaced after every admission (compact proposals)
        self._compact_pending: dict[bytes, int] = {}  # proposer -> compact proposals in work
        self._nursery: trio.Nursery | None = None
        self._last_commit_mono = time.monotonic()
        self._prev_commit_mono = self._last_commit_mono  # the commit before the last one
        self._tx_cost_s: float | None = None  # wall seconds per transaction executed (EWMA)
        self._last_announce = -math.inf  # monotonic time of the last tip announcement
        self._stopping = trio.Event()
        self.metrics: Any = None  # cli.node._metrics.NodeMetrics, set by run()
        self.byzantine = Byzantine.from_env(self)  # None unless in test mode (fault tests)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def open(cls, home: Home, config: NodeConfig, *, app: Application | None = None,
             passphrase: bytes | None = None) -> Node:
        """Open a node home: genesis, node key (decrypted with `passphrase` when it is sealed),
        store (created and initialised if new).

        Raises:
            ConfigError, StoreError: the home cannot be used (named in the message).
        """
        from ledger import read_key_file
        from ledger._chain import default_application, init_store

        home.require()
        genesis = Genesis.load(home.genesis_path)
        node_key = read_key_file(home.node_key_path, passphrase=passphrase)
        application = app or default_application()
        home.create_dirs()
        # checksums verified on every read: a node never serves or votes on bytes its disk
        # damaged (a flipped byte was read back as another chain id; tests/faults/test_disk.py)
        store = init_store(home.ledger_dir, genesis, application, paranoid=True)
        try:
            return cls(home=home, config=config, genesis=genesis, node_key=node_key,
                       app=application, store=store)
        except BaseException:
            store.close()
            raise

    def close(self) -> None:
        self.offload.close()
        if self._consensus_state is not None:
            self._consensus_state.close()
        self.store.close()

    # -- helpers ------------------------------------------------------------------------------
    def _hash_block(self, data: bytes) -> bytes:
        """Block bytes -> header hash, for the core. Decoding a block of thousands of
        transactions costs far more than hashing its bytes, so decoded blocks are kept by the
        digest of their bytes (the core asks again for the same bytes in later rounds)."""
        digest = self._digest(data)
        block = self._block_cache.get(digest)
        if block is None:
            block = Block.decode(data)
            self._cache_block(digest, block)
        return block.hash

    def _cache_block(self, digest: bytes, block: Block) -> None:
        if len(self._block_cache) >= BLOCK_CACHE_SIZE:
            self._block_cache.pop(next(iter(self._block_cache)))
        self._block_cache[digest] = block

    def _cached_block(self, data: bytes) -> Block | None:
        return self._block_cache.get(self._digest(data))

    def _digest(self, data: bytes) -> bytes:
        """SHA-256 of a block's bytes, remembered for the very same bytes object: one block's
        bytes (a megabyte at 2,000 transactions) are looked up four times per height (rebuilt,
        hashed by the core, validated, committed). The entry holds the object itself, so its
        id cannot be reused while the entry lives, and `is` makes the match exact."""
        hit = self._digests.get(id(data))
        if hit is not None and hit[0] is data:
            return hit[1]
        digest = sha256(data)
        if type(data) is not bytes:  # only immutable bytes can be trusted to stay the same
            return digest
        if len(self._digests) >= 4:
            self._digests.pop(next(iter(self._digests)))
        self._digests[id(data)] = (data, digest)
        return digest

    def _block_from(self, block_hash: bytes, data: bytes) -> Block:
        block = self._cached_block(data)
        if block is None:
            block = Block.decode(data)
        if block.hash != block_hash:
            raise DecodeError("block bytes do not hash to the agreed block hash",
                              code="block_hash")
        return block

    @property
    def validators(self) -> tuple[bytes, ...]:
        return self.genesis.validators

    def other_validators(self) -> list[bytes]:
        return self._other_validators

    def push(self, inp: ev.Input) -> None:
        self._queue_send.send_nowait(inp)

    def status(self) -> dict[str, Any]:
        tip = self.store.head()
        host = self.host
        return {
            "chain_id": self.genesis.chain_id.hex(),
            "chain_name": self.genesis.chain_name,
            "node": self.member.name if self.member else "",
            "node_key": self.node_key.public.hex(),
            "peer_id": str(host.peer_id) if host else None,
            "role": "validator" if self.is_validator else "observer",
            "height": tip.height,
            "tip_hash": tip.block_hash.hex(),
            "state_root": tip.state_root.hex(),
            "round": self.core.round if self.core else None,
            "consensus_height": self.core.height if self.core else None,
            "peers": len(host.connected_peers()) if host else 0,
            "peer_keys": sorted(p.hex() for p in host.connected_peers()) if host else [],
            "validators": [v.hex() for v in self.genesis.validators],
            "mempool": len(self.mempool),
            "sync": {"syncing": self.sync.syncing, "target_height": self.sync.target_height,
                     "synced_blocks": self.sync.synced_blocks,
                     "peer_max_height": max(self.peer_heights.values(), default=0)},
            "p2p": host.listen_addrs() if host else [],
            "api": self.api_url,
            "uptime_s": round(time.time() - self.started_at, 1),
        }

    # -- transactions -------------------------------------------------------------------------
    async def submit(self, txs: Sequence[Transaction], *, fan_out: bool = True
                     ) -> list[Admission]:
        """Admit transactions (from the API or a peer) and queue new ones for fan-out.

        Signatures of a large batch are checked in a worker thread (the native batch verifier
        releases the GIL), so the event loop keeps serving the network meanwhile; a small
        one on the loop (`THREADED_VERIFY_MIN`)."""
        fresh = [not held for held in self.mempool.held(txs)]
        signatures_ok: list[bool] | None = None
        if sum(fresh) >= THREADED_VERIFY_MIN:
            todo = [tx for tx, f in zip(txs, fresh, strict=True) if f]
            verdicts_iter = iter(await trio.to_thread.run_sync(verify_transactions, todo))
            signatures_ok = [next(verdicts_iter) if f else True
                             for f in fresh]
        verdicts = self.mempool.add(txs, signatures_ok=signatures_ok)
        self._mempool_grew.set()
        self._mempool_grew = trio.Event()
        now = time.monotonic()
        for tx, v in zip(txs, verdicts, strict=True):
            if v.ok and v.code == "pending":
                self._admitted_at[tx.tx_id] = now
                if fan_out:
                    self._tx_out.append(tx.encode())
        if fan_out and self._tx_out:
            self._tx_out_event.set()
        if self._proposal_wanted is not None:
            self._proposal_changed.set()
        return verdicts

    def tx_status(self, tx_id: bytes) -> dict[str, Any] | None:
        # The mempool first: a pending id is absent from the store's index, and every lookup
        # of an absent key in a large LevelDB store is charged as a "seek" that ends in a
        # compaction (clients long-polling for their pending transactions made nodes with
        # 1,000,000 transactions rewrite 240 MB each for 1,700 transactions at 100 tx/s).
        # A committed transaction leaves the mempool before `commit_event` fires.
        if tx_id in self.mempool:
            return {"tx_id": tx_id.hex(), "status": "pending"}
        loc = self.store.tx_location(tx_id)
        if loc is not None:
            return {"tx_id": tx_id.hex(), "status": "committed", "height": loc[0],
                    "index": loc[1]}
        rej = self.mempool.rejection(tx_id)
        if rej is not None:
            return {"tx_id": tx_id.hex(), "status": "rejected", "code": rej.code,
                    "reason": rej.reason, "height": rej.height}
        return None

    # -- the run ------------------------------------------------------------------------------
    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED
                  ) -> None:
        from cli.node._api import serve_api
        from cli.node._metrics import NodeMetrics

        self.metrics = NodeMetrics(self)
        members = [Member(public_key=m.node_key, addrs=m.addresses)
                   for m in self.genesis.members]
        p2p = self.config.p2p
        opts = HostOptions(listen=(p2p.listen,), channels=(CH_CONSENSUS, CH_TX),
                           max_frame_bytes=p2p.max_frame_bytes,
                           inbox_capacity=p2p.inbox_capacity,
                           outbox_capacity=p2p.outbox_capacity,
                           reconnect_max_s=p2p.reconnect_max_ms / 1000)
        async with open_host(self.node_key, members, opts) as host:
            self.host = host
            host.set_request_handler(SYNC_PROTOCOL, self._serve_sync)
            host.set_request_handler(TXS_PROTOCOL, self._serve_txs)
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._pump)
                nursery.start_soon(self._tx_pump)
                nursery.start_soon(self._tx_fanout)
                nursery.start_soon(self._announcer)
                nursery.start_soon(self._sync_task)
                if self.core is not None:
                    nursery.start_soon(self._timer_task)
                    nursery.start_soon(self._proposer_task)
                    nursery.start_soon(self._driver)
                    self.push(ev.Start())
                self.api_url = await nursery.start(serve_api, self)
                log.info("node %s started: height %d, p2p %s, api %s; %s",
                         self.member.name if self.member else "?", self.store.height,
                         ",".join(host.listen_addrs()), self.api_url,
                         self.store.key_filter_info())
                task_status.started(self)
                await self._stopping.wait()
                nursery.cancel_scope.cancel()

    def stop(self) -> None:
        self._stopping.set()

    # -- driver -------------------------------------------------------------------------------
    async def _driver(self) -> None:
        assert self.core is not None
        while True:
            inp = await self._queue_recv.receive()
            await self._step(inp)
            while self._internal:
                await self._step(self._internal.popleft())

    async def _step(self, inp: ev.Input) -> None:
        assert self.core is not None
        try:
            actions = self.core.step(inp)
        except ValueError as exc:  # a bad ProposalValueReady (our bug): log, keep going
            log.error("consensus refused an input: %s", exc)
            return
        for action in actions:
            await self._execute(action)

    async def _execute(self, action: ev.Action) -> None:
        host = self.host
        assert host is not None
        if isinstance(action, ev.Persist):
            # durable before the vote it covers leaves the node (the driver waits for it);
            # on the event loop while the disk syncs fast, else in a worker thread so that a
            # slow fsync does not stall the API and the network (cli/node/_offload.py)
            state, writer = action.state.encode(), self._consensus_state
            assert writer is not None  # a validator's (only validators have a core)
            await self._timed("persist", self.offload.run(
                "persist", lambda: writer.save(state)))
        elif isinstance(action, ev.Broadcast):
            if self.byzantine is not None:
                self.byzantine.broadcast(CH_CONSENSUS, KIND_CORE, action.msg,
                                         self.other_validators())
                return
            compact = (make_compact(action.msg, self._cached_block)
                       if len(action.msg) >= COMPACT_MIN_BYTES else None)
            if compact is not None:
                self.counters.compact_sent += 1
                host.broadcast(CH_CONSENSUS, KIND_COMPACT, compact, to=self.other_validators())
            else:
                host.broadcast(CH_CONSENSUS, KIND_CORE, action.msg, to=self.other_validators())
        elif isinstance(action, ev.Send):
            if action.to != self.node_key.public:
                host.send(action.to, CH_CONSENSUS, KIND_CORE, action.msg)
        elif isinstance(action, ev.ScheduleTimeout):
            after_ms = action.after_ms
            if self._proposer_unreachable(action.height, action.round):
                after_ms = min(after_ms, UNREACHABLE_PROPOSER_TIMEOUT_MS)
            self._timer = (trio.current_time() + after_ms / 1000,
                           ev.TimeoutFired(height=action.height, round=action.round))
            self._timer_changed.set()
        elif isinstance(action, ev.RequestProposalValue):
            self._proposal_wanted = action
            self._proposal_changed.set()
        elif isinstance(action, ev.ValidateProposal):
            ok = await self._validate(action)
            self._internal.append(ev.ProposalValidated(
                height=action.height, round=action.round, block_hash=action.block_hash, ok=ok))
        elif isinstance(action, ev.Commit):
            await self._commit(action)
        elif isinstance(action, ev.RequestSync):
            self._sync_hint = action.peer_hint
            self._sync_wanted.set()
        elif isinstance(action, ev.ReportEvidence):
            e = action.evidence
            self.counters.evidence += 1
            record = {"validator": e.validator.hex(), "height": e.height, "round": e.round,
                      "kind": e.kind}
            self.counters.evidence_log.append(record)
            del self.counters.evidence_log[:-100]
            log.warning("equivocation evidence: %s", record)
        else:  # pragma: no cover - a new action kind the node does not know yet
            raise AssertionError(f"unknown consensus action {type(action).__name__}")

    def _proposer_unreachable(self, height: int, round_: int) -> bool:
        """Is the proposer of (height, round) another validator that this node has no
        connection to, while it is connected to the rest of a quorum? Then waiting the whole
        round timeout for its proposal is wasted: with one validator down, every n-th height
        would stall for `timeout_ms`."""
        if self.core is None or self.host is None:
            return False
        proposer = self.core.config.proposer(height, round_)
        if proposer == self.node_key.public or self.host.is_connected(proposer):
            return False
        reachable = sum(1 for v in self.other_validators() if self.host.is_connected(v))
        return 1 + reachable >= self.core.config.quorum

    async def _validate(self, action: ev.ValidateProposal) -> bool:
        try:
            block = self._block_from(action.block_hash, action.block_bytes)
        except (DecodeError, PartledgerError) as exc:
            log.info("proposal %d/%d does not decode: %s", action.height, action.round, exc)
            return False
        unverified = [tx for tx, held in zip(block.txs, self.mempool.held(block.txs),
                                             strict=True) if not held]
        async with self._exec_lock:
            if block.height != self.store.height + 1:
                return False
            verdict = await self._timed("validate", self.offload.run(
                "validate", lambda: self.executor.validate(block, unverified=unverified),
                txs=len(block.txs)), txs=len(block.txs))
        if not verdict.ok:
            self.counters.proposals_refused += 1
            log.warning("refusing proposal %d/%d: %s", action.height, action.round,
                        verdict.reason)
        return verdict.ok

    async def _commit(self, action: ev.Commit) -> None:
        block = self._block_from(action.block_hash, action.block_bytes)
        async with self._exec_lock:
            have = self.store.height
            if action.height <= have:
                stored = self.store.tip() if action.height == have else None
                known = (stored.block_hash if stored else
                         self._stored_hash(action.height))
                if known != action.block_hash:
                    raise StoreError(f"consensus committed block {action.height} "
                                     f"{action.block_hash.hex()[:16]} but the store holds "
                                     "another block at that height", code="fork")
                return  # already stored by sync
            try:
                await self._timed("commit", self.offload.run(
                    "commit", lambda: self.executor.commit(block, action.seal),
                    txs=len(block.txs)))
            except VerificationError:
                log.critical("a block finalised by the consortium does not execute here; "
                             "stopping (application divergence)")
                raise
        self._after_commit(block)

    async def _timed(self, phase: str, work: Awaitable[T], *, txs: int = 0) -> T:
        """Await `work`, recording its duration; with `txs` (executing that many transactions)
        also the per-transaction cost that sizes this node's proposals."""
        t0 = time.perf_counter()
        result = await work
        elapsed = time.perf_counter() - t0
        if self.metrics is not None:
            self.metrics.executor_seconds.labels(phase).observe(elapsed)
        if txs >= PROPOSAL_MIN_TXS // 2:
            cost = elapsed / txs
            prev = self._tx_cost_s
            self._tx_cost_s = cost if prev is None else 0.7 * prev + 0.3 * cost
        return result

    def proposal_max_txs(self) -> int:
        """How many transactions the next proposal may carry: the genesis cap, lowered so that
        executing the block fits in a fraction of the round timeout at the cost measured here.

        On a loaded machine a block of `max_block_txs` can take longer to build and validate
        than the round lasts; every validator then times out, the next proposer builds again,
        and throughput collapses. Sizing blocks by measured time keeps each height well inside
        its round (the time adapts to the load, the hardware and the workload)."""
        params = self.genesis.consensus
        cost = self._tx_cost_s
        if cost is None or cost <= 0:
            return params.max_block_txs
        fit = int(params.timeout_ms / 1000 * PROPOSAL_TIME_FRACTION / cost)
        return max(min(PROPOSAL_MIN_TXS, params.max_block_txs), min(params.max_block_txs, fit))

    def _stored_hash(self, height: int) -> bytes | None:
        header = self.store.header(height)
        return header.hash if header else None

    def _after_commit(self, block: Block) -> None:
        now = time.monotonic()
        ids = [tx.tx_id for tx in block.txs]
        self.mempool.remove(ids)
        self.mempool.prune_stale(tx.signer for tx in block.txs)
        admitted = self._admitted_at
        waited: dict[float, int] = {}  # admission time -> transactions (a batch shares one)
        for tx_id in ids:
            t0 = admitted.pop(tx_id, None)
            if t0 is not None:
                waited[t0] = waited.get(t0, 0) + 1
        if self.metrics is not None:
            for t0, count in waited.items():
                self.metrics.tx_latency.observe(now - t0, count)
        if len(self._admitted_at) > 4 * self.config.mempool.max_txs:
            self._admitted_at.clear()
        c = self.counters
        c.blocks_committed += 1
        c.txs_committed += len(ids)
        c.last_commit_latency_ms = max(0, int(time.time() * 1000) - block.header.time_ms)
        if self.metrics is not None:
            self.metrics.block_latency.observe(c.last_commit_latency_ms / 1000)
            self.metrics.block_interval.observe(now - self._last_commit_mono)
        self._prev_commit_mono, self._last_commit_mono = self._last_commit_mono, now
        self.recent_commits.append(CommitRecord(height=block.height, block_hash=block.hash,
                                                tx_count=len(ids), committed_at=time.time()))
        self.commit_event.set()
        self.commit_event = trio.Event()
        if now - self._last_announce >= TIP_ANNOUNCE_MIN_S:
            self._announce_tip()

    # -- timer --------------------------------------------------------------------------------
    async def _timer_task(self) -> None:
        while True:
            self._timer_changed = trio.Event()
            timer = self._timer
            if timer is None:
                await self._timer_changed.wait()
                continue
            deadline, inp = timer
            with trio.move_on_at(deadline):
                await self._timer_changed.wait()
                continue
            if self._timer is timer:
                self._timer = None
                self.push(inp)

    # -- proposer -----------------------------------------------------------------------------
    async def _proposer_task(self) -> None:
        interval = self.genesis.consensus.block_interval_ms / 1000
        idle_max = max(interval, self.genesis.consensus.timeout_ms / 2000)
        while True:
            self._proposal_changed = trio.Event()
            req = self._proposal_wanted
            if req is None:
                await self._proposal_changed.wait()
                continue
            # Batch: wait for the block interval since the last commit, longer when idle.
            idle_until = self._last_commit_mono + idle_max
            while True:
                ready_at = self._batch_ready_at(interval)
                now = time.monotonic()
                if now >= ready_at and (len(self.mempool) > 0 or now >= idle_until):
                    break
                wake = ready_at if now < ready_at else idle_until
                with trio.move_on_after(max(0.0, wake - now)):
                    await self._proposal_changed.wait()
                self._proposal_changed = trio.Event()
                if self._proposal_wanted is not req:
                    break
            if self._proposal_wanted is not req:
                continue
            self._proposal_wanted = None
            await self._build(req)

    def _batch_ready_at(self, interval: float) -> float:
        """When the next proposal may be built: `interval` after the last commit, at once when
        a full proposal is already pending, or sooner when the oldest pending transaction has
        already waited `interval` and arrived while the last height was being agreed (too late
        for its proposal). The interval is there to batch transactions, so it caps how long
        one waits for company: with a full block's worth waiting there is nothing to batch, and
        at light load, waiting it out again after every commit added a whole interval to every
        transaction's latency. A transaction that was pending before the last height began (a
        nonce gap keeps it out of blocks) does not count, so it cannot make the proposers race
        through empty blocks."""
        if len(self.mempool) >= self.proposal_max_txs():
            return self._last_commit_mono
        ready_at = self._last_commit_mono + interval
        oldest = self.mempool.oldest()
        admitted = self._admitted_at.get(oldest) if oldest is not None else None
        if admitted is not None and admitted > self._prev_commit_mono:
            ready_at = min(ready_at, admitted + interval)
        return ready_at

    async def _build(self, req: ev.RequestProposalValue) -> None:
        async with self._exec_lock:
            if self.store.height + 1 != req.height:
                return  # the height moved on while we waited
            candidates = self.mempool.select(max_txs=self.proposal_max_txs(),
                                             max_bytes=self.config.p2p.max_frame_bytes // 2)
            built = await self._timed("build", self.offload.run(
                "build", lambda: self.executor.build(proposer=self.node_key.public,
                                                     candidates=candidates),
                txs=len(candidates)), txs=len(candidates))
        for r in built.rejected:
            self.mempool.reject(r.tx_id, r.code, r.reason, height=req.height)
        self.counters.proposals_built += 1
        data = built.block.encode()
        self._cache_block(self._digest(data), built.block)
        self.push(ev.ProposalValueReady(height=req.height, round=req.round,
                                        block_hash=built.block.hash, block_bytes=data))

    # -- network pumps ------------------------------------------------------------------------
    async def _pump(self) -> None:
        assert self.host is not None
        inbox = self.host.inbox(CH_CONSENSUS)
        async for msg in inbox:
            if msg.kind == KIND_CORE:
                if self.core is None:
                    continue
                if self._queue_send.statistics().current_buffer_used >= DRIVER_QUEUE_MAX:
                    self.counters.dropped_driver_full += 1
                    continue
                self.push(ev.MessageReceived(msg=msg.payload))
            elif msg.kind == KIND_TIP:
                self._on_tip(msg)
            elif msg.kind == KIND_COMPACT:
                busy = self._compact_pending.get(msg.peer, 0)
                if self.core is None or self._nursery is None \
                        or busy >= COMPACT_PENDING_PER_PEER:
                    self.counters.compact_failed += 1
                    continue
                self._compact_pending[msg.peer] = busy + 1
                self._nursery.start_soon(self._on_compact, msg)

    async def _on_compact(self, msg: Inbound) -> None:
        """Rebuild a compact proposal and hand the core the full proposal message."""
        try:
            await self._rebuild_compact(msg)
        finally:
            left = self._compact_pending.pop(msg.peer, 1) - 1
            if left:
                self._compact_pending[msg.peer] = left

    async def _rebuild_compact(self, msg: Inbound) -> None:
        try:
            compact = parse_compact(msg.payload)
        except DecodeError as exc:
            self.counters.dropped_malformed += 1
            log.info("compact proposal from %s refused: %s", msg.peer.hex()[:16], exc)
            return
        if compact.sender != msg.peer:  # proposers send their own proposals
            self.counters.dropped_malformed += 1
            return
        lookup = self.mempool.get
        deadline = trio.current_time() + COMPACT_WAIT_S
        missing = missing_ids(compact, lookup)
        if missing:
            while missing and trio.current_time() < deadline:
                with trio.move_on_at(deadline):
                    await self._mempool_grew.wait()
                missing = [i for i in missing if lookup(i) is None]  # only those still missing
            # once more in full: one found earlier may have left the mempool meanwhile
            missing = missing_ids(compact, lookup)
        try:
            if missing:
                assert self.host is not None
                resp = await self.host.request(msg.peer, TXS_PROTOCOL,
                                               encode_tx_request(missing), timeout_s=10)
                fetched = decode_tx_response(resp, missing)
                self.counters.compact_fetched_txs += len(fetched)

                def lookup(tx_id: bytes) -> Transaction | None:
                    return self.mempool.get(tx_id) or fetched.get(tx_id)
            block, data, full = rebuild(compact, lookup)
        except (DecodeError, KeyError, ConnectionError, trio.TooSlowError) as exc:
            self.counters.compact_failed += 1
            log.info("compact proposal %d from %s not rebuilt: %s", compact.header.height,
                     msg.peer.hex()[:16], exc if not isinstance(exc, KeyError)
                     else "a transaction is missing")
            return
        self.counters.compact_rebuilt += 1
        self._cache_block(self._digest(data), block)
        self.push(ev.MessageReceived(msg=full))

    async def _serve_txs(self, peer: bytes, payload: bytes) -> bytes:
        """Transactions by id for a validator rebuilding one of this node's compact
        proposals: from the mempool, or from the blocks built or seen lately."""
        try:
            ids = decode_tx_request(payload)
        except DecodeError:
            return encode_value([])
        recent: dict[bytes, Transaction] | None = None  # indexed only when the mempool misses
        out = []
        for tx_id in ids:
            tx = self.mempool.get(tx_id)
            if tx is None:
                if recent is None:
                    recent = {t.tx_id: t for b in self._block_cache.values() for t in b.txs}
                tx = recent.get(tx_id)
            out.append(tx.encode() if tx is not None else b"")
        await trio.lowlevel.checkpoint()
        return encode_value(out)

    async def _tx_pump(self) -> None:
        assert self.host is not None
        async for msg in self.host.inbox(CH_TX):
            if msg.kind != KIND_TXS:
                continue
            try:
                raws = decode(msg.payload)
                if not isinstance(raws, list) or not all(isinstance(r, bytes) for r in raws):
                    raise DecodeError("txs: expected a list of transactions", code="txs_shape")
                txs = [Transaction.decode(r) for r in raws]
            except DecodeError:
                self.counters.dropped_malformed += 1
                continue
            self.counters.txs_received += len(txs)
            await self.submit(txs, fan_out=False)

    async def _tx_fanout(self) -> None:
        assert self.host is not None
        flush_s = self.config.p2p.tx_flush_ms / 1000
        batch_max = self.config.p2p.tx_batch_max
        while True:
            await self._tx_out_event.wait()
            self._tx_out_event = trio.Event()
            await trio.sleep(flush_s)  # gather a batch
            pending, self._tx_out = self._tx_out, []
            for i in range(0, len(pending), batch_max):
                chunk = pending[i:i + batch_max]
                # a validator that is down gets these in proposals (or by sync) instead
                self.host.broadcast(CH_TX, KIND_TXS, encode_value(chunk),
                                    to=self.other_validators(), connected_only=True)
                self.counters.txs_fanned_out += len(chunk)

    # -- tips and sync ------------------------------------------------------------------------
    def _announce_tip(self) -> None:
        if self.host is None:
            return
        self._last_announce = time.monotonic()
        height = self.store.height
        if self.byzantine is not None:
            height = self.byzantine.tip_height(height)
        payload = encode_value({"height": height})
        self.host.broadcast(CH_CONSENSUS, KIND_TIP, payload, connected_only=True)

    async def _announcer(self) -> None:
        interval = self.config.sync.announce_interval_ms / 1000
        while True:
            self._announce_tip()
            self._check_lag()
            await trio.sleep(interval)

    def _on_tip(self, msg: Inbound) -> None:
        try:
            m = decode(msg.payload)
            height = m["height"] if isinstance(m, dict) else None
        except (DecodeError, KeyError):
            height = None
        if not isinstance(height, int) or isinstance(height, bool) or height < 0:
            self.counters.dropped_malformed += 1
            return
        self.peer_heights[msg.peer] = height
        self._check_lag()

    def _check_lag(self) -> None:
        mine = self.store.height
        ahead = max(self.peer_heights.values(), default=0)
        if ahead <= mine:
            self._ahead_since = None
            return
        now = time.monotonic()
        if self._ahead_since is None:
            self._ahead_since = now
        lagging = (now - self._ahead_since) * 1000 >= self.config.sync.lag_before_sync_ms
        if self.core is None or ahead >= mine + 2 or lagging:
            self._sync_wanted.set()

    async def _sync_task(self) -> None:
        while True:
            await self._sync_wanted.wait()
            self._sync_wanted = trio.Event()
            try:
                await self._sync_once()
            except trio.TooSlowError:
                self.sync.last_error = "timeout"
            finally:
                self.sync.syncing = False

    async def _sync_once(self) -> None:
        host = self.host
        assert host is not None
        bad: set[bytes] = set()
        while True:
            mine = self.store.height
            peers = [p for p, h in self.peer_heights.items()
                     if h > mine and p not in bad and host.is_connected(p)]
            hint = self._sync_hint
            if hint is not None and hint not in bad and host.is_connected(hint) \
                    and hint not in peers:
                peers.append(hint)
            if not peers:
                return
            peer = max(peers, key=lambda p: self.peer_heights.get(p, mine + 1))
            target = max(self.peer_heights.get(peer, 0), mine + 1)
            self.sync.syncing = True
            self.sync.target_height = max(self.sync.target_height, target)
            req = encode_value({"from": mine + 1,
                                "to": min(target, mine + self.config.sync.batch_blocks)})
            try:
                resp = await host.request(peer, SYNC_PROTOCOL, req, timeout_s=30)
                items = decode(resp)
                if not isinstance(items, list):
                    raise DecodeError("sync: expected a list", code="sync_shape")
            except (ConnectionError, DecodeError, trio.TooSlowError) as exc:
                log.info("sync from %s failed: %s", peer.hex()[:16], exc)
                self.sync.last_error = str(exc)
                bad.add(peer)
                continue
            if not items:
                self.peer_heights[peer] = mine  # it has nothing beyond our tip after all
                bad.add(peer)
                continue
            applied = await self._apply_synced(peer, items)
            if applied == 0:
                bad.add(peer)
            log.info("sync: height %d of %d", self.store.height, self.sync.target_height)

    async def _apply_synced(self, peer: bytes, items: list[Any]) -> int:
        applied = 0
        for item in items:
            if not (isinstance(item, list) and len(item) == 2
                    and isinstance(item[0], bytes) and isinstance(item[1], bytes)):
                return applied
            async with self._exec_lock:
                try:
                    block, seal, _tip = await self.offload.exec_thread.run(
                        partial(self._apply_one, item[0], item[1]))
                except (DecodeError, VerificationError, StoreError) as exc:
                    if exc.code == DIVERGED:  # a sealed block that does not execute here
                        log.critical("%s; stopping", exc.message)
                        raise
                    log.warning("sync: block from %s refused: %s", peer.hex()[:16], exc)
                    self.sync.last_error = str(exc)
                    return applied
            if block is None or seal is None:
                continue  # already had it
            applied += 1
            self.sync.synced_blocks += 1
            self._after_commit(block)
            if self.core is not None:
                self.push(ev.BlockCommittedBySync(height=block.height, block_hash=block.hash,
                                                  seal=seal))
        return applied

    def _apply_one(self, block_bytes: bytes, seal_bytes: bytes
                   ) -> tuple[Block | None, Seal | None, Any]:
        head = self.store.height
        block = Block.decode(block_bytes)
        if block.height <= head:
            return None, None, None
        return self.executor.apply_synced(block, seal_bytes)

    async def _serve_sync(self, peer: bytes, payload: bytes) -> bytes:
        try:
            m = decode(payload)
            start, end = m["from"], m["to"]
        except (DecodeError, KeyError, TypeError):
            return encode_value([])
        if not (isinstance(start, int) and isinstance(end, int)) or start < 1:
            return encode_value([])
        end = min(end, self.store.height, start + self.config.sync.batch_blocks - 1)
        out: list[list[bytes]] = []
        used = 0
        for h in range(start, end + 1):
            b, s = self.store.block_raw(h), self.store.seal_raw(h)
            if b is None or s is None:
                break
            if out and used + len(b) + len(s) > self.config.sync.batch_bytes:
                break
            out.append([b, s])
            used += len(b) + len(s)
        await trio.lowlevel.checkpoint()
        if self.byzantine is not None:
            out = self.byzantine.sync_items(out)
        return encode_value(out)


def apply_native_threads(config: NodeConfig) -> None:
    """Size the native extension's thread pool as `[node] native_threads` says (0: leave it
    at one thread per core)."""
    if config.node.native_threads:
        from ledger import _accel

        _accel.backend.set_threads(config.node.native_threads)


def tune_collector() -> None:
    """Make the cyclic garbage collector run less often in a node process.

    Executing a block allocates millions of short-lived objects (decoded transactions, state
    records, write sets) and almost no reference cycles, so the default threshold (a young
    collection every 700 net allocations, each older generation every 10 of the younger)
    spent a tenth of a replay's time walking live objects for nothing (the replay measured
    15% faster with 100,000; ledger/_replay.py). What exists after start-up (modules, the
    genesis, the store handle) lives as long as the process: `gc.freeze` moves it out of the
    collector's sight for good."""
    import gc

    from ledger._replay import GC_YOUNG_THRESHOLD

    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)


def recent_seals(store: Store, count: int) -> list[tuple[int, bytes, Seal]]:
    """`(height, block hash, seal)` of the last `count` stored blocks: a restarted validator
    hands laggards the seal of a height it decided before the restart (DECIDED) instead of
    leaving them to wait until it commits again."""
    out: list[tuple[int, bytes, Seal]] = []
    for h in range(max(1, store.height - count + 1), store.height + 1):
        seal = store.seal(h)  # names its block's hash (the store checked it at commit)
        if seal is not None:
            out.append((h, seal.block_hash, seal))
    return out


def rejection_of(v: Admission) -> Rejection:
    return Rejection(code=v.code, reason=v.reason)
