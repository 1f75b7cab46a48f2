"""One simulated run: n validators (plus Twins copies) running the real core over a simulated
network and clock, driven from one seeded `random.Random`, single-threaded (never trio).

Time is an integer of milliseconds that jumps from event to event (a heap ordered by time, then
by insertion sequence, so equal times are deterministic). Only what a node `Persist`ed and
`Commit`ted survives its crash. Phases (TigerBeetle VOPR): a safety phase with every fault the
options enable, then a liveness phase (network healed, crashed honest nodes restarted, loss
off) in which every honest node must commit `liveness_heights` new heights within
`liveness_ms`.
"""

from __future__ import annotations

import hashlib
import heapq
import random
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from consensus._core import Config, Core, highest_prepared
from consensus._events import (
    Action,
    BlockCommittedBySync,
    Broadcast,
    Commit,
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
    TimeoutFired,
    ValidateProposal,
)
from consensus._messages import CommitVote, Prepare, Proposal, decode_message
from consensus.sim._app import make_block, validate_block
from consensus.sim._checkers import CRASH, LIVENESS, Checker, Violation
from consensus.sim._network import Network
from consensus.sim._options import Options
from ledger import Seal, SigningKey, sha256, verify_batch, verify_seal
from ledger.errors import DecodeError, VerificationError

SIM_CHAIN = sha256(b"partledger/sim/chain")
MAX_EVENTS = 3_000_000

DELIVER, TIMER, INPUT, CRASH_EV, RESTART, NET, SYNC, LIVE, END = range(9)


@cache
def sim_keys(n: int) -> tuple[SigningKey, ...]:
    """Validator keys, fixed per n (signing setup is the same for every seed)."""
    return tuple(SigningKey(sha256(b"partledger/sim/key/%d/%d" % (n, i))) for i in range(n))


@dataclass
class Instance:
    index: int
    validator: int
    key: SigningKey
    honest: bool
    behaviours: tuple[str, ...]
    core: Core | None = None
    alive: bool = False
    epoch: int = 0
    timer_gen: int = 0
    persisted: PersistedState | None = None
    chain: dict[int, tuple[bytes, bytes, Seal]] = field(default_factory=dict)
    seen_hashes: dict[int, list[bytes]] = field(default_factory=dict)

    @property
    def tip(self) -> int:
        return len(self.chain)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    seed: int
    options: Options
    violations: tuple[Violation, ...]
    min_height: int  # lowest honest committed height at the end
    max_height: int
    sim_ms: int
    events: int
    messages: int
    evidence: int
    crashes: int
    net_changes: int
    max_round: int
    syncs: int
    digest: str  # SHA-256 over the whole trace: equal digests = identical runs

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "ok": self.ok, "min_height": self.min_height,
                "max_height": self.max_height, "sim_ms": self.sim_ms, "events": self.events,
                "messages": self.messages, "evidence": self.evidence, "crashes": self.crashes,
                "net_changes": self.net_changes, "max_round": self.max_round,
                "syncs": self.syncs, "digest": self.digest,
                "violations": [{"kind": v.kind, "height": v.height, "detail": v.detail}
                               for v in self.violations]}


class Cluster:
    def __init__(self, options: Options) -> None:
        o = self.o = options
        self.rng = random.Random(o.seed ^ 0x5EED_5EED)
        keys = sim_keys(o.nodes)
        self._verdicts: dict[tuple[bytes, bytes, bytes], bool] = {}
        self.config = Config(chain=SIM_CHAIN, validators=tuple(k.public for k in keys),
                             timeout_base_ms=o.timeout_base_ms,
                             timeout_max_exponent=o.timeout_max_exponent,
                             verify_batch=self._verify_batch)
        self.instances: list[Instance] = []
        twin_pairs: list[tuple[int, int]] = []
        behaviours = dict(zip(o.byzantine, o.behaviours, strict=True))
        for v, key in enumerate(keys):
            beh = behaviours.get(v, ())
            self.instances.append(Instance(index=len(self.instances), validator=v, key=key,
                                           honest=v not in behaviours, behaviours=beh))
        for inst in list(self.instances):
            if "twins" in inst.behaviours:
                twin = Instance(index=len(self.instances), validator=inst.validator,
                                key=inst.key, honest=False, behaviours=inst.behaviours)
                self.instances.append(twin)
                twin_pairs.append((inst.index, twin.index))
        self.by_key: dict[bytes, list[int]] = {}
        for inst in self.instances:
            self.by_key.setdefault(inst.key.public, []).append(inst.index)
        self.honest = [i for i in self.instances if i.honest]
        self.net = Network(self.rng, o, len(self.instances), twin_pairs)
        self.checker = Checker(chain=SIM_CHAIN, validators=self.config.validators,
                               honest_validators=frozenset(i.validator for i in self.honest))
        self.queue: list[tuple[int, int, int, int, Any]] = []
        self.seq = 0
        self.now = 0
        self.events = 0
        self.live = False
        self.target = 0
        self.done = False
        self.trace = hashlib.sha256()
        self.nonce = 0
        self.crashes = 0
        self.net_changes = 0
        self.max_round = 0
        self.syncs = 0

    def _verify_batch(self, messages: Sequence[bytes], signatures: Sequence[bytes],
                      public_keys: Sequence[bytes]) -> list[bool]:
        """`ledger.verify_batch` with a per-run memo: a verdict is a pure function of its
        triple, and every simulated node would otherwise re-check each broadcast signature."""
        triples = list(zip(messages, signatures, public_keys, strict=True))
        todo = [t for t in triples if t not in self._verdicts]
        if todo:
            fresh = verify_batch([t[0] for t in todo], [t[1] for t in todo],
                                 [t[2] for t in todo])
            self._verdicts.update(zip(todo, fresh, strict=True))
        return [self._verdicts[t] for t in triples]

    # -- scheduling -----------------------------------------------------------------------------

    def push(self, at: int, kind: int, inst: int, payload: Any = None) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (at, self.seq, kind, inst, payload))

    def run(self) -> RunResult:
        o = self.o
        for inst in self.instances:
            if inst.behaviours != ("silent",):
                self.start(inst)
        if o.crash_mean_ms and self.honest:
            self.push(self._exp(o.crash_mean_ms), CRASH_EV, -1)
        if o.partition_mode != "none" or o.clogging:
            first = 0 if o.partition_mode == "twins_split" else self._exp(o.partition_stable_ms)
            self.push(first, NET, -1)
        self.push(o.safety_ms, LIVE, -1)
        while self.queue and not self.done:
            at, _, kind, idx, payload = heapq.heappop(self.queue)
            self.now = at
            self.events += 1
            self.trace.update(b"%d:%d:%d;" % (at, kind, idx))
            if self.events > MAX_EVENTS:
                self.checker.fail(LIVENESS, self.min_tip(), f"event budget {MAX_EVENTS} spent")
                break
            self.handle(kind, idx, payload)
        tips = [i.tip for i in self.honest] or [0]
        return RunResult(seed=o.seed, options=o, violations=tuple(self.checker.violations),
                         min_height=min(tips), max_height=max(tips), sim_ms=self.now,
                         events=self.events, messages=self.net.sent,
                         evidence=self.checker.evidence, crashes=self.crashes,
                         net_changes=self.net_changes, max_round=self.max_round,
                         syncs=self.syncs, digest=self.trace.hexdigest())

    def _exp(self, mean_ms: int) -> int:
        return self.now + 1 + int(self.rng.expovariate(1.0 / mean_ms))

    def min_tip(self) -> int:
        return min((i.tip for i in self.honest), default=0)

    # -- events ---------------------------------------------------------------------------------

    def handle(self, kind: int, idx: int, payload: Any) -> None:
        if kind == DELIVER:
            inst = self.instances[idx]
            self.trace.update(payload)
            if inst.alive:
                if inst.behaviours and "double_vote" in inst.behaviours:
                    self._note_proposal(inst, payload)
                self.step(inst, MessageReceived(msg=payload))
        elif kind == TIMER:
            inst = self.instances[idx]
            epoch, gen, height, round_ = payload
            if inst.alive and inst.epoch == epoch and inst.timer_gen == gen:
                self.step(inst, TimeoutFired(height=height, round=round_))
        elif kind == INPUT:
            inst = self.instances[idx]
            epoch, inp = payload
            if inst.alive and inst.epoch == epoch:
                self.step(inst, inp)
        elif kind == SYNC:
            self.serve_sync(self.instances[idx], *payload)
        elif kind == CRASH_EV:
            if not self.live:
                victim = self.rng.choice(self.honest)
                if victim.alive:
                    self.crash(victim)
                self.push(self._exp(self.o.crash_mean_ms), CRASH_EV, -1)
        elif kind == RESTART:
            inst = self.instances[idx]
            if not inst.alive and not self.live:
                self.start(inst)
        elif kind == NET:
            if not self.live:
                what = self.net.change()
                self.net_changes += 1
                self.trace.update(what.encode())
                self.push(self._exp(self.o.partition_stable_ms), NET, -1)
        elif kind == LIVE:
            self.to_liveness()
        elif kind == END:
            self.done = True
            if len(self.o.byzantine) > self.config.f:
                return  # more than f faulty: liveness is not promised
            lagging = [f"instance {i.index} at height {i.tip + 1} round "
                       f"{i.core.round if i.core else '-'}" for i in self.honest
                       if i.tip < self.target]
            if lagging:
                self.checker.fail(LIVENESS, self.min_tip(),
                                  f"{self.o.liveness_ms} ms after healing, honest nodes below "
                                  f"height {self.target}: " + "; ".join(lagging))

    def to_liveness(self) -> None:
        if self.live:
            return
        self.live = True
        self.net.heal()
        self.trace.update(b"live")
        for inst in self.honest:
            if not inst.alive:
                self.start(inst)
        self.target = max(i.tip for i in self.honest) + self.o.liveness_heights
        self.push(self.now + self.o.liveness_ms, END, -1)
        self.check_done()

    def check_done(self) -> None:
        if self.live and all(i.tip >= self.target for i in self.honest):
            self.done = True

    def start(self, inst: Instance) -> None:
        recent = [(h, inst.chain[h][0], inst.chain[h][2])
                  for h in range(max(1, inst.tip - self.config.recent_seals + 1), inst.tip + 1)]
        inst.core = Core.restore(inst.persisted, config=self.config, key=inst.key,
                                 committed_height=inst.tip, recent_seals=recent)
        inst.alive = True
        inst.epoch += 1
        self.step(inst, Start())

    def crash(self, inst: Instance) -> None:
        self.crashes += 1
        if inst.core is not None:
            self.max_round = max(self.max_round, inst.core.round)
        inst.alive = False
        inst.core = None
        inst.epoch += 1
        self.trace.update(b"crash %d" % inst.index)
        self.push(self._exp(self.o.down_mean_ms), RESTART, inst.index)

    # -- one core step and its actions ----------------------------------------------------------

    def step(self, inst: Instance, inp: Input) -> None:
        assert inst.core is not None
        try:
            actions = inst.core.step(inp)
        except Exception as exc:  # an invariant or a bug: the run's verdict, not the sim's end
            self.checker.fail(CRASH, inst.core.height, f"instance {inst.index} raised "
                              f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}")
            self.done = True
            return
        if not inst.honest:
            for action in self.byzantine(inst, actions):
                self.execute(inst, action)
            return
        cut = len(actions)
        if (self.o.crash_mid_step and self.o.crash_mean_ms and not self.live
                and actions and self.rng.random() < 0.01):
            cut = self.rng.randrange(len(actions))
        for action in actions[:cut]:
            self.execute(inst, action)
        if cut < len(actions):
            self.crash(inst)

    def execute(self, inst: Instance, a: Action | _To) -> None:
        if isinstance(a, _To):
            self.transmit(inst.index, a.index, a.msg)
        elif isinstance(a, Broadcast):
            for j in range(len(self.instances)):
                if j != inst.index:
                    self.transmit(inst.index, j, a.msg)
        elif isinstance(a, Send):
            for j in self.by_key.get(a.to, ()):
                if j != inst.index:
                    self.transmit(inst.index, j, a.msg)
        elif isinstance(a, Persist):
            inst.persisted = a.state
        elif isinstance(a, ScheduleTimeout):
            self.max_round = max(self.max_round, a.round)
            inst.timer_gen += 1
            rates = self.o.clock_rate_pct
            rate = rates[inst.index] if inst.index < len(rates) else 100
            self.push(self.now + a.after_ms * rate // 100, TIMER, inst.index,
                      (inst.epoch, inst.timer_gen, a.height, a.round))
        elif isinstance(a, RequestProposalValue):
            self.nonce += 1
            valid = not ("invalid_block" in inst.behaviours and self.rng.random() < 0.5)
            block = make_block(a.height, a.round, inst.key.public, self.nonce, valid=valid)
            self.checker.block_created(sha256(block), inst.index)
            self.later(inst, ProposalValueReady(height=a.height, round=a.round,
                                                block_hash=sha256(block), block_bytes=block))
        elif isinstance(a, ValidateProposal):
            ok = validate_block(a.block_bytes, a.height)
            self.later(inst, ProposalValidated(height=a.height, round=a.round,
                                               block_hash=a.block_hash, ok=ok))
        elif isinstance(a, Commit):
            self.store(inst, a.height, a.block_hash, a.block_bytes, a.seal, via="consensus")
        elif isinstance(a, RequestSync):
            self.request_sync(inst, a)
        elif isinstance(a, ReportEvidence):
            v = self.config.validators.index(a.evidence.validator)
            self.checker.accused(validator=v, height=a.evidence.height, reporter=inst.index)

    def later(self, inst: Instance, inp: Input) -> None:
        delay = self.rng.randint(0, self.o.app_delay_max_ms) if self.o.app_delay_max_ms else 0
        self.push(self.now + delay, INPUT, inst.index, (inst.epoch, inp))

    def transmit(self, a: int, b: int, msg: bytes) -> None:
        for d in self.net.delays(a, b):
            self.push(self.now + d, DELIVER, b, msg)

    def store(self, inst: Instance, height: int, block_hash: bytes, block: bytes, seal: Seal,
              *, via: str) -> None:
        assert height == inst.tip + 1, (inst.index, height, inst.tip)
        inst.chain[height] = (block_hash, block, seal)
        self.trace.update(b"commit %d %d " % (inst.index, height) + block_hash)
        self.checker.commit(instance=inst.index, honest=inst.honest, height=height,
                            block_hash=block_hash, block=block, seal=seal, via=via)
        if inst.honest:
            if not self.live and inst.tip >= self.o.heights:
                self.push(self.now, LIVE, -1)
            self.check_done()

    # -- block sync -----------------------------------------------------------------------------

    def request_sync(self, inst: Instance, a: RequestSync) -> None:
        candidates = self.by_key.get(a.peer_hint, []) if a.peer_hint else []
        candidates = [j for j in candidates if j != inst.index]
        if not candidates:
            candidates = [j for j in range(len(self.instances)) if j != inst.index]
        peer = self.rng.choice(candidates)
        if not self.net.connected(inst.index, peer):
            return
        there = self.net.delays(inst.index, peer)
        back = self.net.delays(peer, inst.index)
        if there and back:
            self.push(self.now + there[0] + back[0], SYNC, inst.index, (inst.epoch, peer))

    def serve_sync(self, inst: Instance, epoch: int, peer: int) -> None:
        """The node's side of block sync: check each block's seal and validity, store, tell
        the core."""
        source = self.instances[peer]
        while inst.alive and inst.epoch == epoch and inst.core is not None:
            height = inst.tip + 1
            got = source.chain.get(height)
            if got is None:
                return
            block_hash, block, seal = got
            try:
                verify_seal(seal, chain=SIM_CHAIN, block_hash=block_hash, height=height,
                            validators=self.config.validators)
            except VerificationError:
                return
            if sha256(block) != block_hash or not validate_block(block, height):
                return
            self.syncs += 1
            self.store(inst, height, block_hash, block, seal, via=f"sync from {peer}")
            self.step(inst, BlockCommittedBySync(height=height, block_hash=block_hash, seal=seal))

    # -- byzantine behaviours -------------------------------------------------------------------

    def _note_proposal(self, inst: Instance, data: bytes) -> None:
        try:
            m = decode_message(data)
        except DecodeError:
            return
        if isinstance(m, Proposal):
            seen = inst.seen_hashes.setdefault(m.height, [])
            if m.block_hash not in seen:
                seen.append(m.block_hash)
            for h in [h for h in inst.seen_hashes if h < m.height - 2]:
                del inst.seen_hashes[h]

    def byzantine(self, inst: Instance, actions: list[Action]) -> list[Action | _To]:
        """Rewrite a byzantine instance's outgoing messages according to its behaviours."""
        out: list[Action | _To] = []
        rng = self.rng
        beh = inst.behaviours
        others = [j for j in range(len(self.instances)) if j != inst.index]
        for a in actions:
            if not isinstance(a, Broadcast):
                out.append(a)
                continue
            m = decode_message(a.msg)
            alt: bytes | None = None
            if isinstance(m, Proposal) and m.round > 0 and "cherry_pick" in beh:
                picked = self._cherry_pick(inst, m)
                if picked is not None:
                    a = Broadcast(msg=picked)
                    m = decode_message(picked)
            if isinstance(m, Proposal) and "equivocate_proposal" in beh and rng.random() < 0.7:
                self.nonce += 1
                block = make_block(m.height, m.round, inst.key.public, self.nonce)
                self.checker.block_created(sha256(block), inst.index)
                alt = Proposal.sign(inst.key, chain=m.chain, height=m.height, round_=m.round,
                                    block_hash=sha256(block), block=block,
                                    round_changes=m.round_changes, prepares=m.prepares).encode()
            elif (isinstance(m, Prepare | CommitVote) and "double_vote" in beh
                  and rng.random() < 0.7):
                choices = [h for h in inst.seen_hashes.get(m.height, []) if h != m.block_hash]
                other = rng.choice(choices) if choices else sha256(b"%d" % rng.getrandbits(64))
                cls = Prepare if isinstance(m, Prepare) else CommitVote
                alt = cls.sign(inst.key, chain=m.chain, height=m.height, round_=m.round,
                               block_hash=other).encode()
            if alt is None:
                out.append(a)
            else:
                for j in others:  # one version, the other, or (clumsily) both
                    pick = rng.randrange(3)
                    if pick != 1:
                        out.append(_To(index=j, msg=a.msg))
                    if pick != 0:
                        out.append(_To(index=j, msg=alt))
            if "garbage" in beh and rng.random() < 0.2:
                out.append(_To(index=rng.choice(others), msg=self._garbage(a.msg)))
        return out

    def _cherry_pick(self, inst: Instance, m: Proposal) -> bytes | None:
        """Re-justify our proposal with the quorum of ROUND-CHANGEs with the lowest prepared
        rounds, proposing a fresh block when that quorum shows nothing prepared."""
        assert inst.core is not None
        received = list(inst.core._rcs.get(m.round, {}).values())  # the sim may peek
        q = self.config.quorum
        if len(received) < q:
            return None
        received.sort(key=lambda rc: (-1 if rc.prepared_round is None else rc.prepared_round,
                                      rc.sender))
        subset = received[:q]
        best = highest_prepared(subset)
        if best is None:
            self.nonce += 1
            block = make_block(m.height, m.round, inst.key.public, self.nonce)
            self.checker.block_created(sha256(block), inst.index)
            prepares: tuple[Prepare, ...] = ()
        else:
            top = next(rc for rc in subset if rc.prepared_round == best[0])
            assert top.prepared_block is not None
            block, prepares = top.prepared_block, top.prepares
        return Proposal.sign(inst.key, chain=m.chain, height=m.height, round_=m.round,
                             block_hash=sha256(block), block=block, round_changes=subset,
                             prepares=prepares).encode()

    def _garbage(self, msg: bytes) -> bytes:
        rng = self.rng
        kind = rng.randrange(4)
        if kind == 0:
            return rng.randbytes(rng.randint(0, 200))
        if kind == 1:  # flip one bit (bad signature, bad shape or bad hash)
            i = rng.randrange(len(msg))
            return msg[:i] + bytes([msg[i] ^ (1 << rng.randrange(8))]) + msg[i + 1:]
        if kind == 2:
            return msg[: rng.randrange(len(msg))]
        return msg.replace(SIM_CHAIN, sha256(b"another chain"))


@dataclass(frozen=True, slots=True)
class _To:
    """A byzantine point-to-point packet to one instance (not a core action)."""

    index: int
    msg: bytes


def run_seed(seed: int, *, nodes: int, byzantine: int, heights: int) -> RunResult:
    """One whole simulated run for `seed`; the same arguments always give the same result."""
    from consensus.sim._options import swarm

    return Cluster(swarm(seed, nodes=nodes, byzantine=byzantine, heights=heights)).run()
