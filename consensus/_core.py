"""The sans-IO Istanbul BFT core: `Core.step(input) -> list[Action]`.

One `Core` is one validator's view of consensus. It agrees on one height at a time (an IBFT
instance per height, Moniz 2020), in rounds 0, 1, 2, ... (the paper's rounds 1, 2, 3, ...).
It never touches a socket, a clock, a disk or a random source: time is `TimeoutFired`, the
network is `MessageReceived`/`Broadcast`/`Send`, the disk is `Persist`/`Commit`, the
application is `RequestProposalValue`/`ValidateProposal`. The same code runs in the node and in
the simulator. docs/consensus.md maps every rule below to the paper.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from consensus import _state
from consensus._events import (
    Action,
    BlockCommittedBySync,
    Broadcast,
    Commit,
    Evidence,
    Input,
    MessageReceived,
    Persist,
    PersistedState,
    ProposalValidated,
    ProposalValueReady,
    ReportEvidence,
    RequestProposalValue,
    RequestSync,
    ScheduleTimeout,
    Send,
    Start,
    Statistics,
    TimeoutFired,
    ValidateProposal,
)
from consensus._messages import (
    COMMIT,
    MAX_MESSAGE_BYTES,
    PREPARE,
    PROPOSAL,
    ROUND_CHANGE,
    Decided,
    Prepare,
    Proposal,
    RoundChange,
    Vote,
    decode_message,
)
from consensus._messages import CommitVote as CommitMsg
from consensus._state import Event, Step
from ledger import Seal, SigningKey, encode, quorum_size, sha256, verify_batch, verify_seal
from ledger.errors import ConfigError, DecodeError, StoreError, VerificationError

SEEN_MAX = 100_000  # distinct message digests remembered per height (dedupe)
FUTURE_PER_SENDER = 256  # buffered messages per (future height, sender)


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """What every validator of one chain must agree on, plus local limits.

    Args:
        chain: the chain id (32 bytes); messages for other chains are dropped.
        validators: node public keys in genesis order; the proposer of (height, round) is
            `validators[(height + round) % n]`.
        timeout_base_ms: round 0 timeout; round r waits `base · 2^min(r, timeout_max_exponent)`.
        future_heights: messages this many heights ahead are buffered; beyond that a validly
            signed message triggers `RequestSync`.
        round_window: votes for rounds more than this far ahead are dropped.
        recent_seals: seals of the last decided heights kept to answer laggards (`Decided`).
        hash_block: block bytes -> block hash (the node passes the header hash of a decoded
            block); the core only ever looks at a block through it.
        verify_batch: `ledger.verify_batch` (the simulator passes a memo in front of it, so
            that n simulated nodes do not re-check the same signature n times).
    """

    chain: bytes
    validators: tuple[bytes, ...]
    timeout_base_ms: int = 1000
    timeout_max_exponent: int = 16
    future_heights: int = 2
    round_window: int = 64
    recent_seals: int = 16
    max_message_bytes: int = MAX_MESSAGE_BYTES
    hash_block: Callable[[bytes], bytes] = field(default=sha256)
    verify_batch: Callable[[Sequence[bytes], Sequence[bytes], Sequence[bytes]], list[bool]] = (
        field(default=verify_batch))

    def __post_init__(self) -> None:
        if not isinstance(self.chain, bytes) or len(self.chain) != 32:
            raise ConfigError("consensus config: chain must be 32 bytes", code="consensus_config")
        if not self.validators or any(not isinstance(v, bytes) or len(v) != 32
                                      for v in self.validators):
            raise ConfigError("consensus config: validators must be a non-empty list of 32-byte "
                              "keys", code="consensus_config")
        if len(set(self.validators)) != len(self.validators):
            raise ConfigError("consensus config: a validator is listed twice",
                              code="consensus_config")
        if (self.timeout_base_ms < 1 or not 0 <= self.timeout_max_exponent <= 32
                or self.future_heights < 0 or self.round_window < 1 or self.recent_seals < 0):
            raise ConfigError("consensus config: limits out of range", code="consensus_config")

    @property
    def n(self) -> int:
        return len(self.validators)

    @property
    def f(self) -> int:
        return (self.n - 1) // 3

    @property
    def quorum(self) -> int:
        return quorum_size(self.n)

    def proposer(self, height: int, round_: int) -> bytes:
        return self.validators[(height + round_) % self.n]

    def timeout_ms(self, round_: int) -> int:
        return self.timeout_base_ms << min(round_, self.timeout_max_exponent)


_COUNTERS = tuple(name for name in Statistics.__slots__ if name not in ("height", "round"))


class Core:
    """One validator's IBFT state machine. Feed it inputs; execute its actions in order."""

    def __init__(self, config: Config, key: SigningKey, *, height: int = 1,
                 recent_seals: Iterable[tuple[int, bytes, Seal]] = ()) -> None:
        if key.public not in config.validators:
            raise ConfigError("consensus: this node's key is not a validator",
                              code="not_validator")
        if height < 1:
            raise ConfigError("consensus: heights start at 1", code="consensus_config")
        self.config = config
        self._key = key
        self._me = key.public
        self._vset = frozenset(config.validators)
        self._c = dict.fromkeys(_COUNTERS, 0)
        self._started = False
        self._recent_seals: dict[int, tuple[bytes, Seal]] = {}
        self._future: dict[int, dict[bytes, list[bytes]]] = {}
        self._future_count = 0
        self._decided_replies: set[tuple[bytes, int, int]] = set()
        self._old_rcs: dict[bytes, tuple[bytes, int]] = {}  # digest of a laggard's RC
        self._reset_height(height)
        for h, block_hash, seal in sorted(recent_seals, key=lambda x: x[0]):
            if h < height:
                self._remember_seal(h, block_hash, seal)

    # -- construction from persisted state ------------------------------------------------------

    @classmethod
    def restore(cls, persisted: bytes | PersistedState | None, *, config: Config,
                key: SigningKey, committed_height: int,
                recent_seals: Iterable[tuple[int, bytes, Seal]] = ()) -> Core:
        """A core resuming after a crash.

        Args:
            persisted: the last `Persist.state` the node stored (bytes or value), or None.
            committed_height: the highest height in the node's block store (0 if none).
            recent_seals: `(height, block_hash, seal)` of the last few stored blocks (up to
                `config.recent_seals`), so the core can hand laggards their seal (DECIDED).

        Raises:
            DecodeError: `persisted` is not a persisted state of this format.
            StoreError: the persisted state is more than one height past the block store.
        """
        state = (PersistedState.decode(persisted) if isinstance(persisted, bytes)
                 else persisted)
        if state is None or state.height <= committed_height:
            return cls(config, key, height=committed_height + 1, recent_seals=recent_seals)
        if state.height > committed_height + 1:
            raise StoreError(f"consensus state is at height {state.height} but the block store "
                             f"ends at {committed_height}: blocks are missing",
                             code="consensus_ahead")
        core = cls(config, key, height=state.height, recent_seals=recent_seals)
        core._round = state.round
        if state.prepared_round is not None:
            cert = []
            for raw in state.prepared_cert:
                msg = decode_message(raw)
                if not isinstance(msg, Prepare):
                    raise DecodeError("persisted consensus state: certificate entry is not a "
                                      "prepare", code="persisted_shape")
                cert.append(msg)
            assert state.prepared_hash is not None and state.prepared_block is not None
            core._pr, core._ph, core._pblock = (state.prepared_round, state.prepared_hash,
                                                state.prepared_block)
            core._pcert = tuple(cert)
            core._pcert_wire = tuple(state.prepared_cert)
            core._blocks[state.prepared_hash] = state.prepared_block
            core._valid[state.prepared_hash] = True
        core._sent = {(r, k): v for r, k, v in state.sent if r == state.round}
        if state.round_change is not None:
            rc = decode_message(state.round_change)
            if not isinstance(rc, RoundChange) or rc.sender != key.public:
                raise DecodeError("persisted consensus state: round_change is not our "
                                  "ROUND-CHANGE", code="persisted_shape")
            if (rc.height, rc.round) == (state.height, state.round):
                core._last_rc = state.round_change
                core._round_senders[rc.round] = {rc.sender}
        core._check_invariants()
        return core

    # -- public ---------------------------------------------------------------------------------

    @property
    def height(self) -> int:
        return self._height

    @property
    def round(self) -> int:
        return self._round

    @property
    def step_state(self) -> Step:
        return self._step

    @property
    def prepared(self) -> tuple[int, bytes] | None:
        return None if self._pr is None or self._ph is None else (self._pr, self._ph)

    def statistics(self) -> Statistics:
        return Statistics(height=self._height, round=self._round, **self._c)

    def persisted_state(self) -> PersistedState:
        return PersistedState(
            height=self._height, round=self._round, prepared_round=self._pr,
            prepared_hash=self._ph, prepared_block=self._pblock,
            prepared_cert=self._pcert_wire, round_change=self._last_rc,
            sent=tuple(sorted((r, k, v) for (r, k), v in self._sent.items())))

    def step(self, inp: Input) -> list[Action]:
        """Consume one input; return the actions to execute, in order.

        Raises:
            TypeError: `inp` is not one of the input classes.
            ValueError: a `ProposalValueReady` whose bytes do not hash to its `block_hash`
                (a bug in the caller; nothing changes).
        """
        out: list[Action] = []
        if isinstance(inp, MessageReceived):
            self._c["received"] += 1
            self._on_wire(inp.msg, out)
        elif isinstance(inp, TimeoutFired):
            self._on_timeout(inp, out)
        elif isinstance(inp, ProposalValidated):
            self._on_validated(inp, out)
        elif isinstance(inp, ProposalValueReady):
            self._on_value(inp, out)
        elif isinstance(inp, BlockCommittedBySync):
            self._on_synced(inp, out)
        elif isinstance(inp, Start):
            if self._started:
                self._c["stale_inputs"] += 1
            else:
                self._started = True
                out.append(self._timer())
                self._try_propose(out)
        else:
            raise TypeError(f"consensus core: {type(inp).__name__} is not an input")
        self._check_invariants()
        return out

    # -- per-height state -----------------------------------------------------------------------

    def _reset_height(self, height: int) -> None:
        self._height = height
        self._round = 0
        self._step = Step.WAIT_PROPOSAL
        self._pr: int | None = None
        self._ph: bytes | None = None
        self._pblock: bytes | None = None
        self._pcert: tuple[Prepare, ...] = ()
        self._pcert_wire: tuple[bytes, ...] = ()
        self._sent: dict[tuple[int, str], bytes] = {}
        self._blocks: dict[bytes, bytes] = {}
        self._valid: dict[bytes, bool] = {}
        self._validating: set[bytes] = set()
        self._my_values: dict[int, tuple[bytes, bytes]] = {}
        self._requested: set[int] = set()
        self._accepted: dict[int, Proposal] = {}
        self._prepares: dict[int, dict[bytes, Prepare]] = {}
        self._commits: dict[int, dict[bytes, CommitMsg]] = {}
        self._rcs: dict[int, dict[bytes, RoundChange]] = {}
        self._first: dict[tuple[bytes, int, str], tuple[bytes, Vote]] = {}
        self._reported: set[tuple[bytes, int, str]] = set()
        self._seen: set[bytes] = set()
        self._sync_triggers: dict[bytes | None, int] = {}
        self._decided_seen: dict[bytes, Decided] = {}
        self._ahead: dict[bytes, int] = {}
        self._ahead_any: set[bytes] = set()
        self._round_senders: dict[int, set[bytes]] = {}
        self._last_rc: bytes | None = None

    def _go(self, event: Event) -> None:
        self._step = _state.transition(self._step, event)

    def _timer(self) -> ScheduleTimeout:
        return ScheduleTimeout(height=self._height, round=self._round,
                               after_ms=self.config.timeout_ms(self._round))

    # -- wire boundary --------------------------------------------------------------------------

    def _on_wire(self, data: bytes, out: list[Action]) -> None:
        if not isinstance(data, bytes) or len(data) > self.config.max_message_bytes:
            self._c["dropped_malformed"] += 1
            return
        digest = sha256(data)
        again = self._decided_seen.get(digest)
        if again is not None:  # a repeated catch-up hint is a new reason to fetch the block
            self._on_decided(again, digest, out)
            return
        if digest in self._seen:
            self._c["duplicates"] += 1
            stuck = self._old_rcs.get(digest)
            if stuck is not None:  # a laggard re-announcing its round: the seal again
                self._send_decided(*stuck, out)
            return
        if len(self._seen) >= SEEN_MAX:
            self._seen.clear()
        self._seen.add(digest)
        try:
            msg = decode_message(data, max_bytes=self.config.max_message_bytes)
        except DecodeError:
            self._c["dropped_malformed"] += 1
            return
        if msg.chain != self.config.chain:
            self._c["dropped_wrong_chain"] += 1
            return
        if isinstance(msg, Decided):
            self._on_decided(msg, digest, out)
            return
        if msg.sender not in self._vset:
            self._c["dropped_non_validator"] += 1
            return
        if msg.height < self._height:
            self._on_old(msg, out)
            return
        if msg.height > self._height:
            self._on_future(msg, data, out)
            return
        self._on_current(msg, data, out, verified=False)

    def _verify(self, msg: Vote) -> bool:
        """The message's signature and every signature it carries (one batch)."""
        items: list[Vote] = [msg]
        n = self.config.n
        if (isinstance(msg, Proposal) and len(msg.round_changes) > n) or (
                isinstance(msg, Proposal | RoundChange) and len(msg.prepares) > n):
            return False  # certificates never need more than one entry per validator
        if isinstance(msg, Proposal):
            items.extend(msg.round_changes)
            items.extend(msg.prepares)
        elif isinstance(msg, RoundChange):
            items.extend(msg.prepares)
        if any(m.sender not in self._vset for m in items):
            return False
        verdicts = self.config.verify_batch([m.signed_bytes() for m in items],
                                            [m.sig for m in items], [m.sender for m in items])
        return all(verdicts)

    def _on_old(self, msg: Vote, out: list[Action]) -> None:
        """A validator still at a height we decided: a ROUND-CHANGE there means it is stuck, so
        hand it the seal (again each time it re-announces) — the catch-up path for laggards."""
        self._c["dropped_old_height"] += 1
        if (msg.height not in self._recent_seals or not isinstance(msg, RoundChange)
                or msg.sender == self._me):
            return
        key = (msg.sender, msg.height, msg.round)
        if key not in self._decided_replies:
            if not self._verify(msg):
                return
            if len(self._decided_replies) > 4096:
                self._decided_replies.clear()
                self._old_rcs.clear()
            self._decided_replies.add(key)
            self._old_rcs[sha256(msg.encode())] = (msg.sender, msg.height)
        self._send_decided(msg.sender, msg.height, out)

    def _send_decided(self, to: bytes, height: int, out: list[Action]) -> None:
        known = self._recent_seals.get(height)
        if known is None:
            return
        block_hash, seal = known
        out.append(Send(to=to, msg=Decided(chain=self.config.chain, height=height,
                                           block_hash=block_hash, sender=self._me,
                                           seal=seal).encode()))

    def _on_future(self, msg: Vote, data: bytes, out: list[Action]) -> None:
        fresh = msg.sender not in self._ahead_any or (
            isinstance(msg, RoundChange) and msg.sender not in self._ahead)
        if fresh and msg.sender != self._me and self._verify(msg):
            self._ahead_any.add(msg.sender)
            if isinstance(msg, RoundChange):
                # f+1 validators are changing rounds at a higher height: at least one honest
                # node decided our height and is stuck without us — fetch the block
                self._ahead[msg.sender] = msg.height
                if len(self._ahead) >= self.config.f + 1:
                    self._request_sync(msg.sender, out)
        if msg.height - self._height <= self.config.future_heights:
            per_sender = self._future.setdefault(msg.height, {}).setdefault(msg.sender, [])
            if len(per_sender) >= FUTURE_PER_SENDER:
                self._c["dropped_future_overflow"] += 1
                return
            per_sender.append(data)
            self._future_count += 1
            self._c["buffered_future"] += 1
            return
        self._c["dropped_far_future"] += 1
        if self._verify(msg):
            self._request_sync(msg.sender, out)

    def _request_sync(self, peer: bytes | None, out: list[Action]) -> None:
        """Ask for blocks on the 1st, 2nd, 4th, 8th, ... reason to, per peer and height: a lost
        request is retried without flooding, independently of how long our rounds last (the
        simulator found a laggard whose only request was lost, waiting out a 6-minute round)."""
        count = self._sync_triggers.get(peer, 0) + 1
        self._sync_triggers[peer] = count
        if count & (count - 1):
            return
        self._c["sync_requests"] += 1
        out.append(RequestSync(from_height=self._height,
                               peer_hint=None if peer == self._me else peer))

    def _on_current(self, msg: Vote, data: bytes, out: list[Action], *, verified: bool) -> None:
        if msg.round > self._round + self.config.round_window:
            self._c["dropped_round_too_far"] += 1
            return
        if not verified and not self._verify(msg):
            self._c["dropped_bad_signature"] += 1
            return
        if self._equivocates(msg, data, out):
            self._c["dropped_equivocation"] += 1
            return
        if msg.round >= self._round:
            self._round_senders.setdefault(msg.round, set()).add(msg.sender)
        # signed votes carried inside certificates can expose a double vote too
        carried: tuple[Vote, ...] = ()
        if isinstance(msg, Proposal):
            carried = (*msg.round_changes, *msg.prepares)
        elif isinstance(msg, RoundChange):
            carried = msg.prepares
        for m in carried:
            if (m.chain == self.config.chain and m.height == self._height
                    and m.round <= self._round + self.config.round_window):
                self._equivocates(m, None, out)
        if isinstance(msg, Proposal):
            self._on_proposal(msg, out)
        elif isinstance(msg, Prepare):
            self._on_prepare(msg, out)
        elif isinstance(msg, CommitMsg):
            self._on_commit(msg, out)
        else:
            self._on_round_change(msg, out)

    def _equivocates(self, msg: Vote, data: bytes | None, out: list[Action]) -> bool:
        """Keep the first signed message per (validator, round, kind); a different second one is
        evidence, reported once. (Wire bytes are canonical, so `encode` of a decoded message
        gives back exactly the bytes that were signed and sent.)"""
        key = (msg.sender, msg.round, msg.kind)
        first = self._first.get(key)
        if first is None:
            self._first[key] = (msg.value, msg)
            return False
        if first[0] == msg.value:
            return False
        if key not in self._reported:
            self._reported.add(key)
            self._c["evidence_reported"] += 1
            out.append(ReportEvidence(evidence=Evidence(
                validator=msg.sender, height=msg.height, round=msg.round, kind=msg.kind,
                first=first[1].encode(), second=data if data is not None else msg.encode())))
        return True

    def _round_ok(self, round_: int, *, old_ok: bool = False) -> bool:
        if round_ < self._round and not old_ok:
            self._c["dropped_old_round"] += 1
            return False
        if round_ > self._round + self.config.round_window:
            self._c["dropped_round_too_far"] += 1
            return False
        return True

    def _hash_ok(self, block: bytes, block_hash: bytes) -> bool:
        try:
            return self.config.hash_block(block) == block_hash
        except (DecodeError, ValueError):
            return False

    # -- PRE-PREPARE (Algorithm 1 lines "upon PRE-PREPARE", Algorithm 4 JustifyPrePrepare) ------

    def _on_proposal(self, p: Proposal, out: list[Action]) -> None:
        if not self._round_ok(p.round):
            return
        if p.sender != self.config.proposer(self._height, p.round):
            self._c["dropped_wrong_proposer"] += 1
            return
        if p.round in self._accepted:
            self._c["duplicates"] += 1
            return
        if not self._hash_ok(p.block, p.block_hash):
            self._c["dropped_bad_block_hash"] += 1
            return
        if not self.justify_proposal(p):
            self._c["dropped_unjustified"] += 1
            return
        self._c["accepted"] += 1
        if p.round > self._round:
            self._enter_round(p.round, out, broadcast_rc=False)
            if (self._height, self._round) != (p.height, p.round):
                return  # entering the round decided the height (buffered commits)
        self._accepted[p.round] = p
        self._round_senders.setdefault(p.round, set()).update(rc.sender for rc in p.round_changes)
        self._blocks[p.block_hash] = p.block
        out.append(self._timer())  # the paper restarts the timer on a justified PRE-PREPARE
        verdict = self._valid.get(p.block_hash)
        if verdict is None:
            self._go(Event.PROPOSAL_ACCEPTED)
            if p.block_hash not in self._validating:
                self._validating.add(p.block_hash)
                out.append(ValidateProposal(height=self._height, round=p.round,
                                            block_hash=p.block_hash, block_bytes=p.block))
        elif verdict:
            self._go(Event.PROPOSAL_VALID)
            self._send_prepare(p.block_hash, out)
        else:
            self._go(Event.PROPOSAL_INVALID)
        self._check_quorums(out)

    def justify_proposal(self, p: Proposal) -> bool:
        """JustifyPrePrepare: round 0, or a quorum of ROUND-CHANGEs for p.round and either none
        of them prepared, or p proposes the highest prepared value with its PREPARE quorum."""
        if p.round == 0:
            return not p.round_changes and not p.prepares
        senders: set[bytes] = set()
        for rc in p.round_changes:
            if (rc.chain != self.config.chain or rc.height != p.height or rc.round != p.round
                    or rc.sender not in self._vset or rc.sender in senders):
                return False
            senders.add(rc.sender)
        if len(senders) < self.config.quorum:
            return False
        best = highest_prepared(p.round_changes)
        if best is None:
            return not p.prepares
        best_round, _ = best
        at_best = {rc.prepared_hash for rc in p.round_changes if rc.prepared_round == best_round}
        return (p.block_hash in at_best
                and self.is_prepare_certificate(p.prepares, p.height, best_round, p.block_hash))

    def is_prepare_certificate(self, prepares: Iterable[Prepare], height: int, round_: int,
                               block_hash: bytes) -> bool:
        """A quorum of PREPAREs from distinct validators for exactly (height, round, hash)."""
        senders: set[bytes] = set()
        for m in prepares:
            if (m.chain != self.config.chain or m.height != height or m.round != round_
                    or m.block_hash != block_hash or m.sender not in self._vset
                    or m.sender in senders):
                return False
            senders.add(m.sender)
        return len(senders) >= self.config.quorum

    def _on_validated(self, inp: ProposalValidated, out: list[Action]) -> None:
        if inp.height != self._height or inp.block_hash not in self._validating:
            self._c["stale_inputs"] += 1
            return
        self._validating.discard(inp.block_hash)
        self._valid[inp.block_hash] = inp.ok
        acc = self._accepted.get(self._round)
        if acc is not None and acc.block_hash == inp.block_hash and (
                self._step is Step.VALIDATING
                or (self._step is Step.COMMITTED and (self._round, PREPARE) not in self._sent)):
            if inp.ok:
                self._go(Event.PROPOSAL_VALID)
                self._send_prepare(inp.block_hash, out)
            else:
                self._go(Event.PROPOSAL_INVALID)
        self._check_quorums(out)

    # -- PREPARE / COMMIT (Algorithm 1) ---------------------------------------------------------

    def _on_prepare(self, m: Prepare, out: list[Action]) -> None:
        if not self._round_ok(m.round):
            return
        self._c["accepted"] += 1
        self._prepares.setdefault(m.round, {}).setdefault(m.sender, m)
        if m.round == self._round:
            self._check_quorums(out)

    def _on_commit(self, m: CommitMsg, out: list[Action]) -> None:
        if not self._round_ok(m.round, old_ok=True):
            return
        self._c["accepted"] += 1
        self._commits.setdefault(m.round, {}).setdefault(m.sender, m)
        self._check_quorums(out)

    def _check_quorums(self, out: list[Action]) -> None:
        q = self.config.quorum
        height = self._height
        # upon a quorum of PREPARE(h, r_i, v): pr, pv <- r_i, v; broadcast COMMIT
        if self._step is not Step.COMMITTED:
            for block_hash, votes in _tally(self._prepares.get(self._round, {}).values()).items():
                if len(votes) < q or block_hash not in self._blocks:
                    continue
                if self._valid.get(block_hash) is not True:
                    if block_hash not in self._valid and block_hash not in self._validating:
                        self._validating.add(block_hash)
                        out.append(ValidateProposal(
                            height=self._height, round=self._round, block_hash=block_hash,
                            block_bytes=self._blocks[block_hash]))
                    continue
                self._pr, self._ph = self._round, block_hash
                self._pblock = self._blocks[block_hash]
                self._pcert = tuple(sorted(votes, key=lambda m: m.sender))
                self._pcert_wire = tuple(p.encode() for p in self._pcert)
                self._go(Event.PREPARE_QUORUM)
                self._send_commit(block_hash, out)
                break
        if self._height != height:
            return  # the COMMIT's self-delivery completed a commit quorum and decided
        # upon a quorum of COMMIT(h, any round, v): decide
        for round_, by_sender in sorted(self._commits.items()):
            for block_hash, commits in _tally(by_sender.values()).items():
                if len(commits) < q:
                    continue
                if block_hash in self._blocks:
                    seal = Seal.build(height=self._height, round_=round_, block_hash=block_hash,
                                      votes=[(v.sender, v.sig) for v in commits])
                    self._decide(block_hash, seal, out)
                    return
                others = sorted(v.sender for v in commits if v.sender != self._me)
                self._request_sync(others[0] if others else None, out)

    def _send_commit(self, block_hash: bytes, out: list[Action]) -> None:
        round_ = self._round
        self._vote(round_, COMMIT, block_hash, lambda: CommitMsg.sign(
            self._key, chain=self.config.chain, height=self._height, round_=round_,
            block_hash=block_hash), out)

    def _send_prepare(self, block_hash: bytes, out: list[Action]) -> None:
        round_ = self._round
        self._vote(round_, PREPARE, block_hash, lambda: Prepare.sign(
            self._key, chain=self.config.chain, height=self._height, round_=round_,
            block_hash=block_hash), out)

    def _vote(self, round_: int, kind: str, value: bytes, make: Callable[[], Vote],
              out: list[Action]) -> None:
        """Sign, persist, send, then process our own copy — CheckHRS first: never a second,
        different vote of one kind in one round (also across restarts, via `sent`)."""
        assert round_ == self._round
        previous = self._sent.get((round_, kind))
        if previous is not None and previous != value:
            self._c["votes_refused"] += 1
            return
        msg = make()
        assert msg.value == value
        self._sent[(round_, kind)] = value
        wire = msg.encode()
        if kind == ROUND_CHANGE:
            self._last_rc = wire
        out.append(Persist(state=self.persisted_state()))
        out.append(Broadcast(msg=wire))
        self._seen.add(sha256(wire))
        self._on_current(msg, wire, out, verified=True)

    def _decide(self, block_hash: bytes, seal: Seal, out: list[Action]) -> None:
        height = self._height
        out.append(Commit(height=height, block_hash=block_hash,
                          block_bytes=self._blocks[block_hash], seal=seal))
        self._c["commits"] += 1
        self._go(Event.DECIDE)
        self._remember_seal(height, block_hash, seal)
        self._new_height(height + 1, out)

    def _remember_seal(self, height: int, block_hash: bytes, seal: Seal) -> None:
        self._recent_seals[height] = (block_hash, seal)
        for h in [h for h in self._recent_seals if h <= height - self.config.recent_seals]:
            del self._recent_seals[h]

    def _new_height(self, height: int, out: list[Action]) -> None:
        """Start the next instance: round 0, timer reset to the base timeout."""
        self._reset_height(height)
        out.append(self._timer())
        self._try_propose(out)
        for h in [h for h in self._future if h < height]:
            self._future_count -= sum(len(v) for v in self._future.pop(h).values())
        buffered = self._future.pop(height, {})
        self._future_count -= sum(len(v) for v in buffered.values())
        for sender in sorted(buffered):
            for data in buffered[sender]:
                if self._height != height:
                    return  # a replayed message decided this height already
                self._on_wire(data, out)

    # -- round change (Algorithm 3) -------------------------------------------------------------

    def _on_timeout(self, inp: TimeoutFired, out: list[Action]) -> None:
        """Paper: on expiry move to r+1. Here only if round r is *synchronised* — a quorum of
        validators sent messages for it (or r = 0). Otherwise we re-announce our ROUND-CHANGE
        for r and wait another t(r): a node with a fast clock can then never run rounds ahead
        of a quorum (the simulator's clock-skew runs showed it otherwise does, for ever, once
        the timeouts reach their cap)."""
        if (inp.height, inp.round) != (self._height, self._round):
            self._c["stale_inputs"] += 1
            return
        if self._synced():
            self._enter_round(self._round + 1, out, broadcast_rc=True)
            return
        self._c["rounds_reannounced"] += 1
        if self._last_rc is not None:
            out.append(Broadcast(msg=self._last_rc))
        else:
            self._send_round_change(out)
        out.append(self._timer())

    def _synced(self) -> bool:
        """A quorum of validators has been seen at our round or beyond (or it is round 0)."""
        if self._round == 0 or self._pr == self._round:
            return True
        seen = set(self._ahead_any)  # validators at a higher height have left all our rounds
        for r, senders in self._round_senders.items():
            if r >= self._round:
                seen |= senders
        return len(seen) >= self.config.quorum

    def _enter_round(self, round_: int, out: list[Action], *, broadcast_rc: bool) -> None:
        assert round_ > self._round
        self._c["round_changes"] += 1
        self._round = round_
        self._go(Event.ENTER_ROUND)
        for table in (self._prepares, self._rcs):
            for r in [r for r in table if r < round_]:
                del table[r]
        self._sent = {k: v for k, v in self._sent.items() if k[0] >= round_}
        for r in [r for r in self._round_senders if r < round_]:
            del self._round_senders[r]
        self._last_rc = None
        out.append(self._timer())
        if broadcast_rc:
            self._send_round_change(out)
        if self._round == round_:
            self._try_propose(out)
            self._check_quorums(out)

    def _send_round_change(self, out: list[Action]) -> None:
        round_ = self._round
        assert self._pr is None or self._pr < round_
        self._vote(round_, ROUND_CHANGE, _claim(self._pr, self._ph), lambda: RoundChange.sign(
            self._key, chain=self.config.chain, height=self._height, round_=round_,
            prepared_round=self._pr, prepared_hash=self._ph, prepared_block=self._pblock,
            prepares=self._pcert), out)

    def _on_round_change(self, rc: RoundChange, out: list[Action]) -> None:
        if not self._round_ok(rc.round):
            return
        if rc.prepared_round is not None:
            assert rc.prepared_hash is not None
            if (rc.prepared_block is None or not self._hash_ok(rc.prepared_block, rc.prepared_hash)
                    or not self.is_prepare_certificate(rc.prepares, rc.height, rc.prepared_round,
                                                       rc.prepared_hash)):
                self._c["dropped_bad_certificate"] += 1
                return
        self._c["accepted"] += 1
        self._rcs.setdefault(rc.round, {}).setdefault(rc.sender, rc)
        if rc.round > self._round:
            self._check_jump(out)
        else:
            self._try_propose(out)

    def _check_jump(self, out: list[Action]) -> None:
        """f+1 ROUND-CHANGEs for rounds above ours: jump to the smallest round of such a set
        (we take each sender's highest round and the (f+1)-th largest of those)."""
        highest: dict[bytes, int] = {}
        for r, by_sender in self._rcs.items():
            if r > self._round:
                for s in by_sender:
                    highest[s] = max(highest.get(s, r), r)
        f = self.config.f
        if len(highest) >= f + 1:
            target = sorted(highest.values(), reverse=True)[f]
            self._enter_round(target, out, broadcast_rc=True)

    def _try_propose(self, out: list[Action]) -> None:
        """The proposer's rule: round 0 proposes its own value; a later round needs a quorum of
        ROUND-CHANGEs (JustifyRoundChange holds because each RC's certificate was checked on
        receipt) and proposes the highest prepared value, or else its own."""
        h, r = self._height, self._round
        if self.config.proposer(h, r) != self._me or (r, PROPOSAL) in self._sent:
            return
        rcs: list[RoundChange] = []
        prepares: tuple[Prepare, ...] = ()
        value: tuple[bytes, bytes] | None
        if r == 0:
            value = self._my_values.get(0)
        else:
            received = self._rcs.get(r, {})
            if len(received) < self.config.quorum:
                return
            ordered = [received[s] for s in sorted(received)]
            claims = [rc for rc in ordered if rc.prepared_round is not None]
            if claims:
                best = max(claims, key=lambda rc: rc.prepared_round or 0)
                assert best.prepared_hash is not None and best.prepared_block is not None
                value = (best.prepared_hash, best.prepared_block)
                prepares = best.prepares
                rcs = [best] + [rc for rc in ordered if rc is not best]
            else:
                value = self._my_values[max(self._my_values)] if self._my_values else None
                rcs = ordered
            rcs = rcs[:self.config.quorum]
        if value is None:
            if r not in self._requested:
                self._requested.add(r)
                out.append(RequestProposalValue(height=h, round=r))
            return
        block_hash, block = value
        self._vote(r, PROPOSAL, block_hash, lambda: Proposal.sign(
            self._key, chain=self.config.chain, height=h, round_=r, block_hash=block_hash,
            block=block, round_changes=rcs, prepares=prepares), out)

    def _on_value(self, inp: ProposalValueReady, out: list[Action]) -> None:
        if not self._hash_ok(inp.block_bytes, inp.block_hash):
            raise ValueError("ProposalValueReady: block_bytes do not hash to block_hash")
        if inp.height != self._height:
            self._c["stale_inputs"] += 1
            return
        self._my_values[inp.round] = (inp.block_hash, inp.block_bytes)
        self._blocks[inp.block_hash] = inp.block_bytes
        self._valid[inp.block_hash] = True
        self._try_propose(out)

    # -- catching up ----------------------------------------------------------------------------

    def _seal_ok(self, height: int, block_hash: bytes, seal: Seal) -> bool:
        try:
            verify_seal(seal, chain=self.config.chain, block_hash=block_hash, height=height,
                        validators=self.config.validators)
        except VerificationError:
            self._c["dropped_bad_seal"] += 1
            return False
        return True

    def _on_decided(self, d: Decided, digest: bytes, out: list[Action]) -> None:
        if d.height < self._height:
            self._c["dropped_old_height"] += 1
            return
        if digest not in self._decided_seen:
            if not self._seal_ok(d.height, d.block_hash, d.seal):
                return
            if len(self._decided_seen) < 4 * self.config.n:
                self._decided_seen[digest] = d
        if d.height == self._height and d.block_hash in self._blocks:
            self._decide(d.block_hash, d.seal, out)
        else:
            self._request_sync(d.sender, out)

    def _on_synced(self, inp: BlockCommittedBySync, out: list[Action]) -> None:
        if inp.height < self._height:
            self._c["stale_inputs"] += 1
            return
        if not self._seal_ok(inp.height, inp.block_hash, inp.seal):
            return
        self._c["synced_heights"] += 1
        self._go(Event.DECIDE)
        self._remember_seal(inp.height, inp.block_hash, inp.seal)
        self._new_height(inp.height + 1, out)

    # -- invariants -----------------------------------------------------------------------------

    def _check_invariants(self) -> None:
        """Crash on a broken invariant (TigerStyle): these hold after every step."""
        assert self._height >= 1 and self._round >= 0
        assert (self._pr is None) == (self._ph is None) == (self._pblock is None)
        if self._pr is not None:
            assert self._pr <= self._round
            assert self._ph is not None and self.is_prepare_certificate(
                self._pcert, self._height, self._pr, self._ph)
        else:
            assert not self._pcert
        assert all(r == self._round for r, _ in self._sent)
        if self._step is Step.PREPARED:
            assert (self._round, PREPARE) in self._sent
        if self._step is Step.COMMITTED:
            assert (self._round, COMMIT) in self._sent and self._pr == self._round
        if self._step is Step.VALIDATING:
            assert self._round in self._accepted
        assert all(h > self._height for h in self._future)
        assert self._future_count == sum(len(v) for per in self._future.values()
                                         for v in per.values())
        assert len(self._seen) <= SEEN_MAX
        assert all(s in self._vset for table in (self._prepares, self._commits, self._rcs)
                   for by_sender in table.values() for s in by_sender)


def _claim(prepared_round: int | None, prepared_hash: bytes | None) -> bytes:
    return encode([prepared_round, prepared_hash])


def highest_prepared(round_changes: Iterable[RoundChange]) -> tuple[int, bytes] | None:
    """HighestPrepared(Q_rc): the (round, hash) with the highest prepared round, or None."""
    best: tuple[int, bytes] | None = None
    for rc in round_changes:
        if rc.prepared_round is not None and rc.prepared_hash is not None and (
                best is None or rc.prepared_round > best[0]):
            best = (rc.prepared_round, rc.prepared_hash)
    return best


_V = TypeVar("_V", Prepare, CommitMsg)


def _tally(votes: Iterable[_V]) -> dict[bytes, list[_V]]:
    by_hash: dict[bytes, list[_V]] = {}
    for v in votes:
        by_hash.setdefault(v.block_hash, []).append(v)
    return by_hash


