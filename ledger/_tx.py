"""Signed transactions: the unit every member writes to the ledger.

Wire form (canonical msgpack map): `{v, chain, kind, body, signer, nonce, sig}`.
`tx_id = SHA-256(canonical bytes of the map without sig)`; the signature is over
`TX_SIGN_DOMAIN + tx_id`, so a transaction signature can never be mistaken for a vote.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from ledger import _accel, _native_py
from ledger._codec import check_version, decode, encode, unpack_canonical
from ledger._crypto import SigningKey, sha256, verify_batch
from ledger._frozen import positional_constructor
from ledger.errors import DecodeError, VerificationError

TX_VERSION = 1
TX_SIGN_DOMAIN = b"partledger/tx/v1\x00"
MAX_TX_BYTES = 256 * 1024
_FIELDS = frozenset({"v", "chain", "kind", "body", "signer", "nonce", "sig"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Transaction:
    chain: bytes
    kind: str
    body: Mapping[str, Any]
    signer: bytes
    nonce: int
    sig: bytes
    tx_id: bytes = field(default=b"", compare=False)
    raw: bytes = field(default=b"", compare=False, repr=False)

    @staticmethod
    def unsigned_map(*, chain: bytes, kind: str, body: Mapping[str, Any], signer: bytes,
                     nonce: int) -> dict[str, Any]:
        return {"v": TX_VERSION, "chain": chain, "kind": kind, "body": dict(body),
                "signer": signer, "nonce": nonce}

    @classmethod
    def create(cls, key: SigningKey, *, chain: bytes, kind: str, body: Mapping[str, Any],
               nonce: int) -> Transaction:
        """Build and sign a transaction with `key` (its public key becomes `signer`)."""
        unsigned = cls.unsigned_map(chain=chain, kind=kind, body=body, signer=key.public,
                                    nonce=nonce)
        tx_id = sha256(encode(unsigned))
        sig = key.sign(TX_SIGN_DOMAIN + tx_id)
        return cls._from_map({**unsigned, "sig": sig})

    @classmethod
    def _from_map(cls, m: Mapping[str, Any], raw: bytes | None = None) -> Transaction:
        unsigned_bytes = _unsigned_from_raw(raw) if raw is not None else None
        if unsigned_bytes is None:
            unsigned = {k: v for k, v in m.items() if k != "sig"}
            unsigned_bytes = encode(unsigned)
            raw = encode(m)
        assert raw is not None
        tx_id = sha256(unsigned_bytes)
        return cls(chain=m["chain"], kind=m["kind"], body=m["body"], signer=m["signer"],
                   nonce=m["nonce"], sig=m["sig"], tx_id=tx_id, raw=raw)

    def to_map(self) -> dict[str, Any]:
        return {"v": TX_VERSION, "chain": self.chain, "kind": self.kind, "body": dict(self.body),
                "signer": self.signer, "nonce": self.nonce, "sig": self.sig}

    def encode(self) -> bytes:
        return self.raw or encode(self.to_map())

    @classmethod
    def decode(cls, data: bytes) -> Transaction:
        """Decode wire bytes; checks shape and types, not the signature.

        Raises:
            DecodeError: malformed, non-canonical, oversized, or of an unknown version.
        """
        backend = _accel.backend
        if backend is not _native_py and type(data) is bytes:
            # the extension reads the fields in place (`tx_fields`), the body is unpacked
            # when first read (`_Body`): the same values as below, at a fraction of the cost
            fields = backend.tx_fields(data)
            if fields is not None:
                chain, kind, body, signer, nonce, sig, tx_id = fields
                return _new_transaction(chain, kind, _Body(body), signer, nonce, sig, tx_id,
                                        data)
        m = decode(data, max_bytes=MAX_TX_BYTES)
        return cls.from_obj(m, raw=bytes(data))

    @classmethod
    def from_obj(cls, m: Any, *, raw: bytes | None = None) -> Transaction:
        """Build from a decoded map; `raw`, when given, must be its canonical encoding (as
        `decode` has just proven) and spares encoding it again."""
        if not isinstance(m, dict):
            raise DecodeError("transaction: expected a map", code="tx_shape")
        if m.get("v") != TX_VERSION:
            check_version(m, what="transaction", version=TX_VERSION)
        if m.keys() != _FIELDS:
            missing, extra = _FIELDS - set(m), set(m) - _FIELDS
            raise DecodeError(f"transaction: fields missing {sorted(missing)} / unknown "
                              f"{sorted(extra)}", code="tx_shape")
        chain, signer, sig, kind, body, n = (m["chain"], m["signer"], m["sig"], m["kind"],
                                             m["body"], m["nonce"])
        if not isinstance(chain, bytes) or len(chain) != 32:
            _bad_size("chain", 32)
        if not isinstance(signer, bytes) or len(signer) != 32:
            _bad_size("signer", 32)
        if not isinstance(sig, bytes) or len(sig) != 64:
            _bad_size("sig", 64)
        if not isinstance(kind, str) or not 0 < len(kind) <= 64:
            raise DecodeError("transaction: kind must be a non-empty string", code="tx_shape")
        if not isinstance(body, dict):
            raise DecodeError("transaction: body must be a map", code="tx_shape")
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise DecodeError("transaction: nonce must be a non-negative integer", code="tx_shape")
        unsigned = _unsigned_from_raw(raw) if raw is not None else None
        if raw is None or unsigned is None:
            return cls._from_map(m)
        return cls(chain=chain, kind=kind, body=body, signer=signer, nonce=n, sig=sig,
                   tx_id=sha256(unsigned), raw=raw)

    def signing_message(self) -> bytes:
        return TX_SIGN_DOMAIN + self.tx_id


# one per transaction per node: the fast constructor (ledger/_frozen.py)
_new_transaction = positional_constructor(Transaction, "chain", "kind", "body", "signer", "nonce",
                                          "sig", "tx_id", "raw")


class _Body(Mapping[str, Any]):
    """A transaction body kept as its canonical bytes (already checked as part of the
    transaction) and unpacked when first read. A node admits, relays, orders and (natively)
    executes most transactions without reading their bodies; unpacking each one on arrival was
    about 2% of the nodes' busy time at saturation, and the mempool held every body as dozens
    of Python objects (docs/performance.md, "Ninth session")."""

    __slots__ = ("_map", "_raw")

    def __init__(self, raw: bytes) -> None:
        self._raw = raw
        self._map: dict[str, Any] | None = None

    def _value(self) -> dict[str, Any]:
        if self._map is None:
            self._map = unpack_canonical(self._raw)
        return self._map

    def __getitem__(self, key: str) -> Any:
        return self._value()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._value())

    def __len__(self) -> int:
        return len(self._value())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Body):
            other = other._value()
        return self._value() == other

    __hash__ = None  # type: ignore[assignment]  # like the dict it stands for

    def __repr__(self) -> str:
        return repr(self._value())


# The canonical map of a valid transaction ends with its three last keys in sorted order,
# "sig" (bin8, 64 bytes), "signer" (bin8, 32 bytes), "v" (fixint 1), so the unsigned map's bytes
# are the signed map's bytes with the map header decremented and the sig entry cut out.
_SIG_ENTRY = b"\xa3sig\xc4\x40"
_SIGNER_ENTRY = b"\xa6signer\xc4\x20"
_TAIL = len(_SIG_ENTRY) + 64 + len(_SIGNER_ENTRY) + 32 + 3
_V_ENTRY = b"\xa1v" + bytes([TX_VERSION])


def _unsigned_from_raw(raw: bytes) -> bytes | None:
    """Canonical bytes of the map without `sig`, cut from the canonical signed bytes; None when
    the layout is not the expected one (then the caller encodes from scratch)."""
    n = len(raw)
    if n <= _TAIL or raw[0] != 0x87:
        return None
    t = n - _TAIL
    if (raw[t:t + 6] != _SIG_ENTRY or raw[t + 70:t + 79] != _SIGNER_ENTRY
            or raw[n - 3:] != _V_ENTRY):
        return None
    return b"\x86" + raw[1:t] + raw[t + 70:]


def _bad_size(name: str, size: int) -> NoReturn:
    raise DecodeError(f"transaction: {name} must be {size} bytes", code="tx_shape")


def verify_transactions(txs: Sequence[Transaction]) -> list[bool]:
    """Signature verdict for each transaction, in one batch."""
    return verify_batch([t.signing_message() for t in txs], [t.sig for t in txs],
                        [t.signer for t in txs])


def require_valid_signatures(txs: Sequence[Transaction]) -> None:
    """Raises VerificationError naming the first transaction whose signature fails."""
    for tx, ok in zip(txs, verify_transactions(txs), strict=True):
        if not ok:
            raise VerificationError(f"transaction {tx.tx_id.hex()}: bad signature",
                                    code="bad_tx_signature")
