"""Consensus messages: their wire form, their signed bytes, and strict decoding.

Every message is one canonical msgpack map (`ledger.encode`) with `v` (format version) and `t`
(type). What a validator signs is NOT the wire map but a small domain-separated body rebuilt from
the fields, so that attachments (block bytes, certificates) can travel without being signed
twice:

- PROPOSAL, PREPARE, ROUND-CHANGE: `SIGN_DOMAIN ‖ encode({t, chain, height, round, ...})`;
- COMMIT: exactly `ledger.commit_vote_message(chain, height, round, block_hash)`, so that a
  quorum of commit messages IS a `ledger.Seal` (no second signature per commit).

`decode_message` is the one boundary where peer bytes enter the core: anything that is not
exactly one of the shapes below raises `ledger.errors.DecodeError` with a `code`.
Signatures are not checked here (the core does that through `ledger.verify_batch`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ledger import Seal, SigningKey, commit_vote_message, decode, encode
from ledger.errors import DecodeError

MESSAGE_VERSION = 1
SIGN_DOMAIN = b"partledger/consensus/v1\x00"
MAX_MESSAGE_BYTES = 40 * 1024 * 1024
MAX_CERT = 1024  # entries in a certificate (validator sets are far smaller)

PROPOSAL = "proposal"
PREPARE = "prepare"
COMMIT = "commit"
ROUND_CHANGE = "round_change"
DECIDED = "decided"


def _sign_body(kind: str, chain: bytes, height: int, round_: int, extra: dict[str, Any]) -> bytes:
    return SIGN_DOMAIN + encode({"t": kind, "chain": chain, "height": height, "round": round_,
                                 **extra})


@dataclass(frozen=True, slots=True, kw_only=True)
class Prepare:
    """PREPARE(height, round, block_hash): "I accepted this round's proposal"."""

    chain: bytes
    height: int
    round: int
    sender: bytes
    block_hash: bytes
    sig: bytes

    kind = PREPARE

    @property
    def value(self) -> bytes:
        return self.block_hash

    def signed_bytes(self) -> bytes:
        return _sign_body(PREPARE, self.chain, self.height, self.round,
                          {"block_hash": self.block_hash})

    def to_map(self) -> dict[str, Any]:
        return {"v": MESSAGE_VERSION, "t": PREPARE, "chain": self.chain, "height": self.height,
                "round": self.round, "sender": self.sender, "block_hash": self.block_hash,
                "sig": self.sig}

    def encode(self) -> bytes:
        return encode(self.to_map())

    @classmethod
    def sign(cls, key: SigningKey, *, chain: bytes, height: int, round_: int,
             block_hash: bytes) -> Prepare:
        unsigned = cls(chain=chain, height=height, round=round_, sender=key.public,
                       block_hash=block_hash, sig=b"")
        return cls(chain=chain, height=height, round=round_, sender=key.public,
                   block_hash=block_hash, sig=key.sign(unsigned.signed_bytes()))


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitVote:
    """COMMIT(height, round, block_hash); `sig` is a commit vote usable in a `ledger.Seal`."""

    chain: bytes
    height: int
    round: int
    sender: bytes
    block_hash: bytes
    sig: bytes

    kind = COMMIT

    @property
    def value(self) -> bytes:
        return self.block_hash

    def signed_bytes(self) -> bytes:
        return commit_vote_message(self.chain, self.height, self.round, self.block_hash)

    def to_map(self) -> dict[str, Any]:
        return {"v": MESSAGE_VERSION, "t": COMMIT, "chain": self.chain, "height": self.height,
                "round": self.round, "sender": self.sender, "block_hash": self.block_hash,
                "sig": self.sig}

    def encode(self) -> bytes:
        return encode(self.to_map())

    @classmethod
    def sign(cls, key: SigningKey, *, chain: bytes, height: int, round_: int,
             block_hash: bytes) -> CommitVote:
        return cls(chain=chain, height=height, round=round_, sender=key.public,
                   block_hash=block_hash,
                   sig=key.sign(commit_vote_message(chain, height, round_, block_hash)))


@dataclass(frozen=True, slots=True, kw_only=True)
class RoundChange:
    """ROUND-CHANGE(height, round, prepared_round, prepared_hash).

    Signed: the four fields. Attached, unsigned: the prepared block's bytes and the quorum of
    PREPAREs that certifies (prepared_round, prepared_hash) — QBFT's piggybacked justification.
    Inside a proposal's justification the attachments are left out.
    """

    chain: bytes
    height: int
    round: int
    sender: bytes
    prepared_round: int | None
    prepared_hash: bytes | None
    sig: bytes
    prepared_block: bytes | None = None
    prepares: tuple[Prepare, ...] = ()

    kind = ROUND_CHANGE

    @property
    def value(self) -> bytes:
        return encode([self.prepared_round, self.prepared_hash])

    def signed_bytes(self) -> bytes:
        return _sign_body(ROUND_CHANGE, self.chain, self.height, self.round,
                          {"prepared_round": self.prepared_round,
                           "prepared_hash": self.prepared_hash})

    def stripped(self) -> RoundChange:
        return RoundChange(chain=self.chain, height=self.height, round=self.round,
                           sender=self.sender, prepared_round=self.prepared_round,
                           prepared_hash=self.prepared_hash, sig=self.sig)

    def to_map(self) -> dict[str, Any]:
        return {"v": MESSAGE_VERSION, "t": ROUND_CHANGE, "chain": self.chain,
                "height": self.height, "round": self.round, "sender": self.sender,
                "prepared_round": self.prepared_round, "prepared_hash": self.prepared_hash,
                "sig": self.sig, "prepared_block": self.prepared_block,
                "prepares": [p.to_map() for p in self.prepares]}

    def encode(self) -> bytes:
        return encode(self.to_map())

    @classmethod
    def sign(cls, key: SigningKey, *, chain: bytes, height: int, round_: int,
             prepared_round: int | None, prepared_hash: bytes | None,
             prepared_block: bytes | None, prepares: Sequence[Prepare]) -> RoundChange:
        unsigned = cls(chain=chain, height=height, round=round_, sender=key.public,
                       prepared_round=prepared_round, prepared_hash=prepared_hash, sig=b"")
        return cls(chain=chain, height=height, round=round_, sender=key.public,
                   prepared_round=prepared_round, prepared_hash=prepared_hash,
                   sig=key.sign(unsigned.signed_bytes()), prepared_block=prepared_block,
                   prepares=tuple(prepares))


@dataclass(frozen=True, slots=True, kw_only=True)
class Proposal:
    """PRE-PREPARE(height, round, block) with its justification for rounds > 0.

    Signed: (height, round, block_hash). Attached: the block bytes, a quorum of (stripped)
    ROUND-CHANGEs for this round and, when one of them reports a prepared value, the quorum of
    PREPAREs certifying the highest one.
    """

    chain: bytes
    height: int
    round: int
    sender: bytes
    block_hash: bytes
    sig: bytes
    block: bytes
    round_changes: tuple[RoundChange, ...] = ()
    prepares: tuple[Prepare, ...] = ()

    kind = PROPOSAL

    @property
    def value(self) -> bytes:
        return self.block_hash

    def signed_bytes(self) -> bytes:
        return _sign_body(PROPOSAL, self.chain, self.height, self.round,
                          {"block_hash": self.block_hash})

    def to_map(self) -> dict[str, Any]:
        return {"v": MESSAGE_VERSION, "t": PROPOSAL, "chain": self.chain, "height": self.height,
                "round": self.round, "sender": self.sender, "block_hash": self.block_hash,
                "sig": self.sig, "block": self.block,
                "round_changes": [rc.to_map() for rc in self.round_changes],
                "prepares": [p.to_map() for p in self.prepares]}

    def encode(self) -> bytes:
        return encode(self.to_map())

    @classmethod
    def sign(cls, key: SigningKey, *, chain: bytes, height: int, round_: int, block_hash: bytes,
             block: bytes, round_changes: Sequence[RoundChange] = (),
             prepares: Sequence[Prepare] = ()) -> Proposal:
        unsigned = cls(chain=chain, height=height, round=round_, sender=key.public,
                       block_hash=block_hash, sig=b"", block=block)
        return cls(chain=chain, height=height, round=round_, sender=key.public,
                   block_hash=block_hash, sig=key.sign(unsigned.signed_bytes()), block=block,
                   round_changes=tuple(rc.stripped() for rc in round_changes),
                   prepares=tuple(prepares))


@dataclass(frozen=True, slots=True, kw_only=True)
class Decided:
    """A catch-up hint: `height` was finalised with `seal` (self-authenticating, unsigned).

    Sent to a validator whose messages show it is still working on a height we have decided.
    `sender` is only a hint of whom to ask for the block.
    """

    chain: bytes
    height: int
    block_hash: bytes
    sender: bytes
    seal: Seal

    kind = DECIDED

    def to_map(self) -> dict[str, Any]:
        return {"v": MESSAGE_VERSION, "t": DECIDED, "chain": self.chain, "height": self.height,
                "block_hash": self.block_hash, "sender": self.sender, "seal": self.seal.to_map()}

    def encode(self) -> bytes:
        return encode(self.to_map())


Message = Proposal | Prepare | CommitVote | RoundChange | Decided
Vote = Proposal | Prepare | CommitVote | RoundChange


# -- strict decoding ----------------------------------------------------------------------------

def _bad(what: str) -> DecodeError:
    return DecodeError(f"consensus message: {what}", code="consensus_shape")


def _need_keys(m: dict[str, Any], keys: frozenset[str], what: str) -> None:
    if set(m) != keys:
        raise _bad(f"{what} fields {sorted(set(m) ^ keys)} missing or unknown")


def _int(m: dict[str, Any], name: str) -> int:
    v = m[name]
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise _bad(f"{name} must be a non-negative integer")
    return v


def _b32(m: dict[str, Any], name: str) -> bytes:
    v = m[name]
    if not isinstance(v, bytes) or len(v) != 32:
        raise _bad(f"{name} must be 32 bytes")
    return v


def _sig(m: dict[str, Any]) -> bytes:
    v = m["sig"]
    if not isinstance(v, bytes) or len(v) != 64:
        raise _bad("sig must be 64 bytes")
    return v


def _header(m: Any, kind: str, keys: frozenset[str]) -> tuple[bytes, int, int, bytes]:
    if not isinstance(m, dict):
        raise _bad(f"{kind}: expected a map")
    if m.get("v") != MESSAGE_VERSION or m.get("t") != kind:
        raise _bad(f"expected a version {MESSAGE_VERSION} {kind}")
    _need_keys(m, keys, kind)
    return _b32(m, "chain"), _int(m, "height"), _int(m, "round"), _b32(m, "sender")


_VOTE_KEYS = frozenset({"v", "t", "chain", "height", "round", "sender", "block_hash", "sig"})
_RC_KEYS = frozenset({"v", "t", "chain", "height", "round", "sender", "prepared_round",
                      "prepared_hash", "sig", "prepared_block", "prepares"})
_PROPOSAL_KEYS = frozenset({"v", "t", "chain", "height", "round", "sender", "block_hash", "sig",
                            "block", "round_changes", "prepares"})
_DECIDED_KEYS = frozenset({"v", "t", "chain", "height", "block_hash", "sender", "seal"})


def _prepare_from(m: Any) -> Prepare:
    chain, height, round_, sender = _header(m, PREPARE, _VOTE_KEYS)
    return Prepare(chain=chain, height=height, round=round_, sender=sender,
                   block_hash=_b32(m, "block_hash"), sig=_sig(m))


def _commit_from(m: Any) -> CommitVote:
    chain, height, round_, sender = _header(m, COMMIT, _VOTE_KEYS)
    return CommitVote(chain=chain, height=height, round=round_, sender=sender,
                  block_hash=_b32(m, "block_hash"), sig=_sig(m))


def _list(m: dict[str, Any], name: str) -> list[Any]:
    v = m[name]
    if not isinstance(v, list) or len(v) > MAX_CERT:
        raise _bad(f"{name} must be a list of at most {MAX_CERT}")
    return v


def _rc_from(m: Any) -> RoundChange:
    chain, height, round_, sender = _header(m, ROUND_CHANGE, _RC_KEYS)
    pr, ph, pb = m["prepared_round"], m["prepared_hash"], m["prepared_block"]
    if pr is None:
        if ph is not None or pb is not None or m["prepares"]:
            raise _bad("round change without a prepared round carries a prepared value")
    else:
        pr = _int(m, "prepared_round")
        ph = _b32(m, "prepared_hash")
        if pr >= round_:
            raise _bad("prepared_round must be below the round")
        if pb is not None and not isinstance(pb, bytes):
            raise _bad("prepared_block must be bytes or nil")
    return RoundChange(chain=chain, height=height, round=round_, sender=sender,
                       prepared_round=pr, prepared_hash=ph, sig=_sig(m), prepared_block=pb,
                       prepares=tuple(_prepare_from(p) for p in _list(m, "prepares")))


def _proposal_from(m: Any) -> Proposal:
    chain, height, round_, sender = _header(m, PROPOSAL, _PROPOSAL_KEYS)
    if not isinstance(m["block"], bytes):
        raise _bad("block must be bytes")
    rcs = tuple(_rc_from(r) for r in _list(m, "round_changes"))
    if any(rc.prepared_block is not None or rc.prepares for rc in rcs):
        raise _bad("round changes inside a proposal must be stripped")
    return Proposal(chain=chain, height=height, round=round_, sender=sender,
                    block_hash=_b32(m, "block_hash"), sig=_sig(m), block=m["block"],
                    round_changes=rcs,
                    prepares=tuple(_prepare_from(p) for p in _list(m, "prepares")))


def _decided_from(m: dict[str, Any]) -> Decided:
    _need_keys(m, _DECIDED_KEYS, DECIDED)
    return Decided(chain=_b32(m, "chain"), height=_int(m, "height"),
                   block_hash=_b32(m, "block_hash"), sender=_b32(m, "sender"),
                   seal=Seal.from_obj(m["seal"]))


_DECODERS: dict[str, Callable[[Any], Message]] = {PREPARE: _prepare_from, COMMIT: _commit_from, ROUND_CHANGE: _rc_from,
             PROPOSAL: _proposal_from, DECIDED: _decided_from}


def decode_message(data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Message:
    """Decode one wire message; exactly the shapes above are accepted.

    Raises:
        DecodeError: non-canonical bytes, unknown version or type, or a malformed field.
    """
    m = decode(data, max_bytes=max_bytes)
    if not isinstance(m, dict):
        raise _bad("expected a map")
    kind = m.get("t")
    decoder = _DECODERS.get(kind) if isinstance(kind, str) else None
    if decoder is None:
        raise _bad(f"unknown message type {kind!r}")
    return decoder(m)
