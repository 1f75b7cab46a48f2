"""Inputs the core consumes and actions it emits — plain values, nothing else.

All are frozen, slotted, keyword-only dataclasses (h2 `events.py`): construct them, compare them,
never subclass them. The driver (the node's trio task, or the simulator) turns the world into
inputs and executes the actions IN ORDER. See `consensus/__init__.py` for the contract of each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger import Seal, decode, encode
from ledger.errors import DecodeError

# -- inputs -------------------------------------------------------------------------------------
# Inputs come from the local node, not from peers: a malformed one is a caller bug and raises
# ValueError at construction (h11's events validate themselves), before the core sees it.


def _check_hr(height: int, round_: int) -> None:
    if (not isinstance(height, int) or isinstance(height, bool) or height < 1
            or not isinstance(round_, int) or isinstance(round_, bool) or round_ < 0):
        raise ValueError(f"height must be >= 1 and round >= 0, got {height!r}, {round_!r}")


def _check_hash(block_hash: bytes) -> None:
    if not isinstance(block_hash, bytes) or len(block_hash) != 32:
        raise ValueError("block_hash must be 32 bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class Start:
    """First input after construction or restore: arms the timer, asks for a proposal."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageReceived:
    """Raw wire bytes of one consensus message from a peer (any peer; the core checks)."""

    msg: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeoutFired:
    """The timer scheduled by `ScheduleTimeout(height, round, ...)` expired."""

    height: int
    round: int

    def __post_init__(self) -> None:
        _check_hr(self.height, self.round)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposalValueReady:
    """Answer to `RequestProposalValue`: the block this node proposes (already valid)."""

    height: int
    round: int
    block_hash: bytes
    block_bytes: bytes

    def __post_init__(self) -> None:
        _check_hr(self.height, self.round)
        _check_hash(self.block_hash)
        if not isinstance(self.block_bytes, bytes):
            raise ValueError("block_bytes must be bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposalValidated:
    """Answer to `ValidateProposal`: the application's verdict on a proposed block."""

    height: int
    round: int
    block_hash: bytes
    ok: bool

    def __post_init__(self) -> None:
        _check_hr(self.height, self.round)
        _check_hash(self.block_hash)
        if not isinstance(self.ok, bool):
            raise ValueError("ok must be a bool")


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockCommittedBySync:
    """The node stored `height` from block sync after checking `seal` (the core re-checks)."""

    height: int
    block_hash: bytes
    seal: Seal

    def __post_init__(self) -> None:
        _check_hr(self.height, 0)
        _check_hash(self.block_hash)
        if not isinstance(self.seal, Seal):
            raise ValueError("seal must be a ledger.Seal")


Input = (Start | MessageReceived | TimeoutFired | ProposalValueReady | ProposalValidated
         | BlockCommittedBySync)


# -- actions ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Persist:
    """Durably store `state` (replacing the previous one) BEFORE executing the next action."""

    state: PersistedState


@dataclass(frozen=True, slots=True, kw_only=True)
class Broadcast:
    """Send `msg` to every other validator (the core has already processed its own copy)."""

    msg: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Send:
    """Send `msg` to the validator whose node key is `to`."""

    to: bytes
    msg: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleTimeout:
    """(Re)arm THE timer: fire `TimeoutFired(height, round)` after `after_ms`; replaces any
    timer armed before (there is one timer per core)."""

    height: int
    round: int
    after_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestProposalValue:
    """Build a block for (height, round) on top of the committed tip; answer with
    `ProposalValueReady`."""

    height: int
    round: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidateProposal:
    """Validate `block_bytes` (whose hash the core checked is `block_hash`) as block `height`;
    answer with `ProposalValidated`."""

    height: int
    round: int
    block_hash: bytes
    block_bytes: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Commit:
    """`block_bytes` is final at `height`: execute and store it with `seal`, durably."""

    height: int
    block_hash: bytes
    block_bytes: bytes
    seal: Seal


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestSync:
    """Fetch blocks with seals from `from_height` on (ask `peer_hint` first if given) and feed
    each as `BlockCommittedBySync`."""

    from_height: int
    peer_hint: bytes | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """Two validly signed, conflicting messages from one validator (same height, round, type).

    `first` and `second` are the wire bytes; anyone can re-check them with `decode_message` and
    `ledger.verify`.
    """

    validator: bytes
    height: int
    round: int
    kind: str
    first: bytes
    second: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportEvidence:
    """Log/metric/API: `evidence` of equivocation (reported once per validator, height, round,
    kind)."""

    evidence: Evidence


Action = (Persist | Broadcast | Send | ScheduleTimeout | RequestProposalValue | ValidateProposal
          | Commit | RequestSync | ReportEvidence)


# -- persisted state ----------------------------------------------------------------------------

PERSIST_VERSION = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class PersistedState:
    """What must survive a crash for the node never to contradict a vote it already sent.

    `sent` lists `(round, kind, value)` for every vote signed at `height` (value = block hash, or
    the encoded prepared claim for a round change) — the core's `CheckHRS`. The prepared value,
    its block and its certificate let a restarted node still report it in ROUND-CHANGEs.
    """

    height: int
    round: int
    prepared_round: int | None
    prepared_hash: bytes | None
    prepared_block: bytes | None
    prepared_cert: tuple[bytes, ...]  # wire bytes of the quorum of PREPAREs
    sent: tuple[tuple[int, str, bytes], ...]
    round_change: bytes | None = None  # our last ROUND-CHANGE at `round`, re-announced as is

    def to_map(self) -> dict[str, Any]:
        return {"v": PERSIST_VERSION, "height": self.height, "round": self.round,
                "prepared_round": self.prepared_round, "prepared_hash": self.prepared_hash,
                "prepared_block": self.prepared_block, "prepared_cert": list(self.prepared_cert),
                "sent": [[r, k, v] for r, k, v in self.sent], "round_change": self.round_change}

    def encode(self) -> bytes:
        return encode(self.to_map())

    @classmethod
    def decode(cls, data: bytes) -> PersistedState:
        """Raises: DecodeError if `data` is not a persisted consensus state."""
        m = decode(data)
        keys = {"v", "height", "round", "prepared_round", "prepared_hash", "prepared_block",
                "prepared_cert", "sent"}
        if isinstance(m, dict) and set(m) == keys | {"round_change"}:
            keys = set(m)  # round_change arrived after the first format; both decode
        if not isinstance(m, dict) or set(m) != keys or m["v"] != PERSIST_VERSION:
            raise DecodeError("persisted consensus state: unexpected shape or version",
                              code="persisted_shape")

        def nonneg(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and v >= 0

        pr, ph, pb = m["prepared_round"], m["prepared_hash"], m["prepared_block"]
        ok = (nonneg(m["height"]) and m["height"] >= 1 and nonneg(m["round"])
              and ((pr is None and ph is None and pb is None)
                   or (nonneg(pr) and isinstance(ph, bytes) and isinstance(pb, bytes)))
              and isinstance(m["prepared_cert"], list)
              and all(isinstance(c, bytes) for c in m["prepared_cert"])
              and isinstance(m.get("round_change"), bytes | None)
              and isinstance(m["sent"], list)
              and all(isinstance(s, list) and len(s) == 3 and nonneg(s[0])
                      and isinstance(s[1], str) and isinstance(s[2], bytes) for s in m["sent"]))
        if not ok:
            raise DecodeError("persisted consensus state: malformed fields",
                              code="persisted_shape")
        return cls(height=m["height"], round=m["round"], prepared_round=pr, prepared_hash=ph,
                   prepared_block=pb, prepared_cert=tuple(m["prepared_cert"]),
                   sent=tuple((s[0], s[1], s[2]) for s in m["sent"]),
                   round_change=m.get("round_change"))


# -- statistics ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Statistics:
    """Counters since construction (trio's `statistics()` convention: an immutable snapshot)."""

    height: int
    round: int
    received: int
    accepted: int
    duplicates: int
    dropped_malformed: int
    dropped_wrong_chain: int
    dropped_non_validator: int
    dropped_bad_signature: int
    dropped_old_height: int
    dropped_far_future: int
    dropped_future_overflow: int
    dropped_old_round: int
    dropped_round_too_far: int
    dropped_wrong_proposer: int
    dropped_bad_block_hash: int
    dropped_unjustified: int
    dropped_bad_certificate: int
    dropped_equivocation: int
    dropped_bad_seal: int
    buffered_future: int
    stale_inputs: int
    votes_refused: int
    evidence_reported: int
    sync_requests: int
    round_changes: int
    rounds_reannounced: int
    commits: int
    synced_heights: int

    @property
    def dropped(self) -> int:
        total: int = sum(getattr(self, name) for name in self.__slots__
                         if name.startswith("dropped_"))
        return total
