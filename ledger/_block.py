"""Blocks and commit seals.

A block is a header plus its transactions; `block_hash = SHA-256(canonical header)`. The seal is
the quorum of commit votes over `(chain, height, round, block_hash)`. It lives here, not in
`consensus`, so that an auditor can check finality with the genesis file and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger._codec import check_version, decode, encode
from ledger._crypto import SigningKey, sha256, verify_batch
from ledger._merkle import root as merkle_root
from ledger._tx import Transaction
from ledger.errors import DecodeError, VerificationError

BLOCK_VERSION = 1
SEAL_VERSION = 1
COMMIT_SIGN_DOMAIN = b"partledger/commit/v1\x00"
MAX_BLOCK_BYTES = 32 * 1024 * 1024
MAX_HEADER_BYTES = 4096  # a header is about 300 bytes
MAX_BLOCK_TXS = 20_000
_HEADER_FIELDS = frozenset({"v", "chain", "height", "prev_hash", "time_ms", "proposer", "tx_root",
                            "tx_count", "state_root", "validators_hash"})


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockHeader:
    chain: bytes
    height: int
    prev_hash: bytes
    time_ms: int
    proposer: bytes
    tx_root: bytes
    tx_count: int
    state_root: bytes
    validators_hash: bytes

    def to_map(self) -> dict[str, Any]:
        return {"v": BLOCK_VERSION, "chain": self.chain, "height": self.height,
                "prev_hash": self.prev_hash, "time_ms": self.time_ms, "proposer": self.proposer,
                "tx_root": self.tx_root, "tx_count": self.tx_count,
                "state_root": self.state_root, "validators_hash": self.validators_hash}

    def encode(self) -> bytes:
        return encode(self.to_map())

    @property
    def hash(self) -> bytes:
        return sha256(self.encode())

    @classmethod
    def decode(cls, data: bytes) -> BlockHeader:
        return cls.from_obj(decode(data, max_bytes=MAX_HEADER_BYTES))

    @classmethod
    def from_obj(cls, m: Any) -> BlockHeader:
        if not isinstance(m, dict):
            raise DecodeError("block header: expected a map", code="header_shape")
        check_version(m, what="block header", version=BLOCK_VERSION)
        if set(m) != _HEADER_FIELDS:
            raise DecodeError(f"block header: fields {sorted(set(m) ^ _HEADER_FIELDS)} missing or "
                              "unknown", code="header_shape")
        for name in ("chain", "prev_hash", "tx_root", "state_root", "validators_hash", "proposer"):
            if not isinstance(m[name], bytes) or len(m[name]) != 32:
                raise DecodeError(f"block header: {name} must be 32 bytes", code="header_shape")
        for name in ("height", "time_ms", "tx_count"):
            if not isinstance(m[name], int) or isinstance(m[name], bool) or m[name] < 0:
                raise DecodeError(f"block header: {name} must be a non-negative integer",
                                  code="header_shape")
        return cls(**{k: v for k, v in m.items() if k != "v"})


def _block_parts(m: Any) -> tuple[BlockHeader, list[bytes]]:
    """The header and the transactions' bytes of a decoded block map, its shape checked."""
    if not isinstance(m, dict) or set(m) != {"v", "header", "txs"}:
        raise DecodeError("block: expected a map with v, header, txs", code="block_shape")
    check_version(m, what="block", version=BLOCK_VERSION)
    raws = m["txs"]
    if not isinstance(raws, list) or len(raws) > MAX_BLOCK_TXS:
        raise DecodeError(f"block: txs must be a list of at most {MAX_BLOCK_TXS}",
                          code="block_shape")
    if not all(isinstance(raw, bytes) for raw in raws):
        raise DecodeError("block: each tx must be bytes", code="block_shape")
    return BlockHeader.from_obj(m["header"]), raws


@dataclass(frozen=True, slots=True, kw_only=True)
class Block:
    header: BlockHeader
    txs: tuple[Transaction, ...]
    # `body_root`, once computed: a validator computes it when it rebuilds a compact proposal
    # and again in `check_body`, on the same object (`txs` is a tuple: it cannot change)
    _body_root: bytes | None = field(default=None, init=False, compare=False, repr=False)
    # the canonical bytes, once known: encoded (1.4 ms at 2,000 transactions) for a proposal
    # and again for the store, or the very bytes the block was decoded from
    _encoded: bytes | None = field(default=None, init=False, compare=False, repr=False)

    def body_root(self) -> bytes:
        """`tx_root(self.txs)`, computed once per object."""
        root = self._body_root
        if root is None:
            root = tx_root(self.txs)
            object.__setattr__(self, "_body_root", root)
        return root

    @property
    def hash(self) -> bytes:
        return self.header.hash

    @property
    def height(self) -> int:
        return self.header.height

    def to_map(self) -> dict[str, Any]:
        return {"v": BLOCK_VERSION, "header": self.header.to_map(),
                "txs": [t.encode() for t in self.txs]}

    def encode(self) -> bytes:
        data = self._encoded
        if data is None:
            data = encode(self.to_map())
            object.__setattr__(self, "_encoded", data)
        return data

    @classmethod
    def decode(cls, data: bytes) -> Block:
        return cls.from_obj(decode(data, max_bytes=MAX_BLOCK_BYTES)).decoded_from(data)

    def decoded_from(self, data: bytes) -> Block:
        """This block, noting that it was decoded from `data`. The decoder accepts only the
        canonical encoding of a value, so `data` is what `encode` would return: kept instead
        of encoding again."""
        if type(data) is bytes:
            object.__setattr__(self, "_encoded", data)
        return self

    @classmethod
    def parts(cls, data: bytes) -> tuple[BlockHeader, list[bytes]]:
        """A block's header and its transactions' wire bytes, the transactions undecoded: what
        listings, hash lookups and proofs need (a block of 2,000 transactions takes
        milliseconds to decode whole, on the node's event loop when its API serves these).

        Raises:
            DecodeError: as `decode` would, except for what is inside a transaction's bytes.
        """
        return _block_parts(decode(data, max_bytes=MAX_BLOCK_BYTES))

    @classmethod
    def from_obj(cls, m: Any) -> Block:
        header, raws = _block_parts(m)
        return cls(header=header, txs=tuple(Transaction.decode(raw) for raw in raws))

    def check_body(self) -> None:
        """The header's tx_root and tx_count match the body, and every tx is for this chain.

        Raises:
            VerificationError: naming what does not match.
        """
        h = self.header
        if h.tx_count != len(self.txs):
            raise VerificationError(f"block {h.height}: tx_count {h.tx_count} but "
                                    f"{len(self.txs)} transactions", code="tx_count")
        if self.body_root() != h.tx_root:
            raise VerificationError(f"block {h.height}: tx_root does not match its transactions",
                                    code="tx_root")
        for tx in self.txs:
            if tx.chain != h.chain:
                raise VerificationError(f"block {h.height}: transaction {tx.tx_id.hex()} is for "
                                        "another chain", code="wrong_chain")


def tx_root(txs: Sequence[Transaction]) -> bytes:
    """RFC 9162 root over the transactions' canonical wire bytes (signatures included)."""
    return merkle_root([t.encode() for t in txs])


# -- seals -------------------------------------------------------------------------------------

def commit_vote_message(chain: bytes, height: int, round_: int, block_hash: bytes) -> bytes:
    """The bytes a validator signs to commit a block (consensus signs exactly these too)."""
    return COMMIT_SIGN_DOMAIN + encode({"block_hash": block_hash, "chain": chain,
                                        "height": height, "round": round_})


def sign_commit(key: SigningKey, chain: bytes, height: int, round_: int,
                block_hash: bytes) -> bytes:
    return key.sign(commit_vote_message(chain, height, round_, block_hash))


@dataclass(frozen=True, slots=True, kw_only=True)
class Seal:
    """A commit certificate: at least a quorum of validator signatures over one commit vote."""

    height: int
    round: int
    block_hash: bytes
    votes: tuple[tuple[bytes, bytes], ...]  # (validator public key, signature), sorted by key

    def to_map(self) -> dict[str, Any]:
        return {"v": SEAL_VERSION, "height": self.height, "round": self.round,
                "block_hash": self.block_hash, "votes": [[pk, s] for pk, s in self.votes]}

    def encode(self) -> bytes:
        return encode(self.to_map())

    @classmethod
    def decode(cls, data: bytes) -> Seal:
        return cls.from_obj(decode(data, max_bytes=1024 * 1024))

    @classmethod
    def from_obj(cls, m: Any) -> Seal:
        if not isinstance(m, dict) or set(m) != {"v", "height", "round", "block_hash", "votes"}:
            raise DecodeError("seal: expected a map with v, height, round, block_hash, votes",
                              code="seal_shape")
        check_version(m, what="seal", version=SEAL_VERSION)
        ok = (isinstance(m["height"], int) and isinstance(m["round"], int)
              and not isinstance(m["height"], bool) and not isinstance(m["round"], bool)
              and m["height"] >= 0 and m["round"] >= 0
              and isinstance(m["block_hash"], bytes) and len(m["block_hash"]) == 32
              and isinstance(m["votes"], list) and len(m["votes"]) <= 1024)
        if not ok:
            raise DecodeError("seal: malformed fields", code="seal_shape")
        votes = []
        for v in m["votes"]:
            if not (isinstance(v, list) and len(v) == 2 and isinstance(v[0], bytes)
                    and len(v[0]) == 32 and isinstance(v[1], bytes) and len(v[1]) == 64):
                raise DecodeError("seal: each vote must be [32-byte key, 64-byte signature]",
                                  code="seal_shape")
            votes.append((v[0], v[1]))
        return cls(height=m["height"], round=m["round"], block_hash=m["block_hash"],
                   votes=tuple(votes))

    @classmethod
    def build(cls, *, height: int, round_: int, block_hash: bytes,
              votes: Sequence[tuple[bytes, bytes]]) -> Seal:
        return cls(height=height, round=round_, block_hash=block_hash,
                   votes=tuple(sorted(dict(votes).items())))


def quorum_size(n_validators: int) -> int:
    """Votes needed among n validators: n - f with f = floor((n - 1) / 3)."""
    return n_validators - (n_validators - 1) // 3


def validators_hash(validators: Sequence[bytes]) -> bytes:
    return sha256(encode(sorted(validators)))


def verify_seal(seal: Seal, *, chain: bytes, block_hash: bytes, height: int,
                validators: Sequence[bytes]) -> None:
    """Check that `seal` finalises `block_hash` at `height` under `validators`.

    Raises:
        VerificationError: wrong block or height, unknown or repeated signer, bad signature,
        or fewer than a quorum of distinct validators.
    """
    if seal.height != height or seal.block_hash != block_hash:
        raise VerificationError(f"seal is for height {seal.height} block "
                                f"{seal.block_hash.hex()[:16]}, not height {height} block "
                                f"{block_hash.hex()[:16]}", code="seal_mismatch")
    vset = set(validators)
    keys = [pk for pk, _ in seal.votes]
    if len(set(keys)) != len(keys):
        raise VerificationError(f"seal at height {height}: a validator signed twice",
                                code="seal_duplicate")
    for pk in keys:
        if pk not in vset:
            raise VerificationError(f"seal at height {height}: signer {pk.hex()[:16]} is not a "
                                    "validator", code="seal_unknown_signer")
    need = quorum_size(len(vset))
    if len(keys) < need:
        raise VerificationError(f"seal at height {height}: {len(keys)} votes, {need} needed",
                                code="seal_short")
    msg = commit_vote_message(chain, height, seal.round, block_hash)
    verdicts = verify_batch([msg] * len(keys), [s for _, s in seal.votes], keys)
    for pk, ok in zip(keys, verdicts, strict=True):
        if not ok:
            raise VerificationError(f"seal at height {height}: bad signature from validator "
                                    f"{pk.hex()[:16]}", code="seal_bad_signature")
