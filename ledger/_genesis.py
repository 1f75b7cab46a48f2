"""The genesis file: the consortium's founding document and the root of every audit.

Format (JSON, format 1)::

    {"format": 1, "chain_name": "...", "genesis_time_ms": 1700000000000,
     "members": [{"name": "acme", "org_key": "<64 hex>", "node_key": "<64 hex>",
                  "addresses": ["/ip4/127.0.0.1/tcp/7001"], "roles": ["validator", "member"]}],
     "consensus": {"timeout_ms": 2000, "max_block_txs": 2000, "block_interval_ms": 500}}

The chain id is SHA-256 of the canonical msgpack encoding of the parsed JSON document, so it does
not depend on whitespace or key order in the file, but on every value in it. Every transaction,
block and commit vote binds that id. The validators are the node keys of the members with the
role "validator", in genesis order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger._block import validators_hash
from ledger._codec import encode
from ledger._crypto import sha256
from ledger.errors import ConfigError, DecodeError

GENESIS_FORMAT = 1
MAX_MEMBERS = 1024
MAX_GENESIS_BYTES = 1024 * 1024
ROLE_VALIDATOR = "validator"
#: Roles the consortium uses today; the loader accepts any lowercase identifier so that new roles
#: need no change here, but these are the ones the state machine gives meaning to.
KNOWN_ROLES = ("authority", "certifier", "member", "observer", "recycler", "validator")
_ROLE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_TOP_FIELDS = frozenset({"format", "chain_name", "genesis_time_ms", "members", "consensus"})
_MEMBER_FIELDS = frozenset({"name", "org_key", "node_key", "addresses", "roles"})
_CONSENSUS_FIELDS = frozenset({"timeout_ms", "max_block_txs", "block_interval_ms"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """One consortium member: its organisation key signs transactions, its node key votes."""

    name: str
    org_key: bytes
    node_key: bytes
    addresses: tuple[str, ...]
    roles: tuple[str, ...]

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @property
    def is_validator(self) -> bool:
        return ROLE_VALIDATOR in self.roles

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "org_key": self.org_key.hex(), "node_key": self.node_key.hex(),
                "addresses": list(self.addresses), "roles": list(self.roles)}


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsensusParams:
    timeout_ms: int = 2000
    max_block_txs: int = 2000
    block_interval_ms: int = 500

    def to_json(self) -> dict[str, int]:
        return {"timeout_ms": self.timeout_ms, "max_block_txs": self.max_block_txs,
                "block_interval_ms": self.block_interval_ms}


@dataclass(frozen=True, slots=True, kw_only=True)
class Genesis:
    """A validated genesis document. Build with `Genesis.load`, `.loads`, `.from_document` or
    `.create`; never construct field by field (the chain id must match the document)."""

    chain_name: str
    genesis_time_ms: int
    members: tuple[Member, ...]
    consensus: ConsensusParams
    chain_id: bytes
    document: Mapping[str, Any] = field(repr=False, compare=False)

    # -- lookups ---------------------------------------------------------------------------
    @property
    def validators(self) -> tuple[bytes, ...]:
        """Node keys of the validators, in genesis order."""
        return tuple(m.node_key for m in self.members if m.is_validator)

    @property
    def validators_hash(self) -> bytes:
        """The value every block header's `validators_hash` must carry."""
        return validators_hash(self.validators)

    def member(self, name: str) -> Member | None:
        return next((m for m in self.members if m.name == name), None)

    def member_by_org_key(self, key: bytes) -> Member | None:
        return next((m for m in self.members if m.org_key == key), None)

    def member_by_node_key(self, key: bytes) -> Member | None:
        return next((m for m in self.members if m.node_key == key), None)

    def members_with_role(self, role: str) -> tuple[Member, ...]:
        return tuple(m for m in self.members if role in m.roles)

    # -- loading ---------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> Genesis:
        """Read and validate a genesis file.

        Raises:
            ConfigError: unreadable, not JSON, or breaking a rule (the message names the field).
        """
        p = Path(path)
        try:
            data = p.read_bytes()
        except FileNotFoundError as exc:
            raise ConfigError(f"genesis file {p} does not exist", code="genesis_missing") from exc
        except OSError as exc:
            raise ConfigError(f"cannot read genesis file {p}: {exc.strerror}",
                              code="genesis_unreadable") from exc
        return cls.loads(data, source=str(p))

    @classmethod
    def loads(cls, data: bytes | str, *, source: str = "genesis") -> Genesis:
        if isinstance(data, str):
            data = data.encode()
        if len(data) > MAX_GENESIS_BYTES:
            raise ConfigError(f"{source}: larger than {MAX_GENESIS_BYTES} bytes",
                              code="genesis_invalid")
        try:
            doc = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates,
                             parse_float=_no_float, parse_constant=_no_float)
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{source}: not UTF-8 text", code="genesis_invalid") from exc
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno} column "
                              f"{exc.colno})", code="genesis_invalid") from exc
        except _GenesisJSONError as exc:
            raise ConfigError(f"{source}: {exc}", code="genesis_invalid") from exc
        return cls.from_document(doc, source=source)

    @classmethod
    def from_document(cls, doc: Any, *, source: str = "genesis") -> Genesis:
        def bad(msg: str) -> ConfigError:
            return ConfigError(f"{source}: {msg}", code="genesis_invalid")

        if not isinstance(doc, dict):
            raise bad("the document must be a JSON object")
        if doc.get("format") != GENESIS_FORMAT:
            raise ConfigError(f"{source}: format {doc.get('format')!r} is not supported "
                              f"(expected {GENESIS_FORMAT})", code="genesis_version")
        if set(doc) != _TOP_FIELDS:
            raise bad(_fields_msg("the document", set(doc), _TOP_FIELDS))
        name = doc["chain_name"]
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise bad("chain_name must be 1-64 letters, digits, '.', '_' or '-'")
        t = doc["genesis_time_ms"]
        if not _is_int(t) or not 0 <= t < 2**62:
            raise bad("genesis_time_ms must be a non-negative integer (milliseconds since 1970)")
        cons = doc["consensus"]
        if not isinstance(cons, dict) or set(cons) != _CONSENSUS_FIELDS:
            raise bad(_fields_msg("consensus", set(cons) if isinstance(cons, dict) else set(),
                                  _CONSENSUS_FIELDS))
        for k in sorted(_CONSENSUS_FIELDS):
            if not _is_int(cons[k]) or not 0 < cons[k] <= 10**9:
                raise bad(f"consensus.{k} must be a positive integer")
        members_doc = doc["members"]
        if not isinstance(members_doc, list) or not 0 < len(members_doc) <= MAX_MEMBERS:
            raise bad(f"members must be a list of 1 to {MAX_MEMBERS} members")
        members = [_member(i, m, bad) for i, m in enumerate(members_doc)]
        for attr in ("name", "org_key", "node_key"):
            seen: set[object] = set()
            for i, m in enumerate(members):
                v = getattr(m, attr)
                if v in seen:
                    shown = v.hex() if isinstance(v, bytes) else v
                    raise bad(f"members[{i}].{attr} {shown} appears twice")
                seen.add(v)
        if not any(m.is_validator for m in members):
            raise bad("no member has the role 'validator'")
        try:
            chain_id = sha256(encode(doc))
        except DecodeError as exc:  # pragma: no cover - the checks above exclude this
            raise bad(f"cannot be encoded canonically: {exc}") from exc
        return cls(chain_name=name, genesis_time_ms=t, members=tuple(members),
                   consensus=ConsensusParams(**cons), chain_id=chain_id, document=doc)

    @classmethod
    def create(cls, *, chain_name: str, genesis_time_ms: int, members: Sequence[Member],
               consensus: ConsensusParams | None = None) -> Genesis:
        """Build (and validate) a genesis from parts, e.g. for `dev generate` and tests."""
        doc = {"format": GENESIS_FORMAT, "chain_name": chain_name,
               "genesis_time_ms": genesis_time_ms,
               "members": [m.to_json() for m in members],
               "consensus": (consensus or ConsensusParams()).to_json()}
        return cls.from_document(doc)

    def to_json(self) -> str:
        """The document as pretty JSON (re-loading it gives the same chain id)."""
        return json.dumps(self.document, indent=2, sort_keys=True) + "\n"

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")


class _GenesisJSONError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _GenesisJSONError(f"key {k!r} appears twice in one object")
        out[k] = v
    return out


def _no_float(text: str) -> Any:
    raise _GenesisJSONError(f"number {text} is not an integer (floats are not allowed)")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _fields_msg(what: str, have: set[str], want: frozenset[str]) -> str:
    missing, extra = sorted(want - have), sorted(have - want)
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing)}")
    if extra:
        parts.append(f"unknown {', '.join(extra)}")
    return f"{what}: fields {'; '.join(parts) or 'malformed'}"


def _hex_key(v: Any, where: str, bad: Any) -> bytes:
    if not isinstance(v, str) or len(v) != 64 or v != v.lower():
        raise bad(f"{where} must be 64 lowercase hex characters (an Ed25519 public key)")
    try:
        return bytes.fromhex(v)
    except ValueError as exc:
        raise bad(f"{where} is not hex") from exc


def _member(i: int, m: Any, bad: Any) -> Member:
    where = f"members[{i}]"
    if not isinstance(m, dict) or set(m) != _MEMBER_FIELDS:
        raise bad(_fields_msg(where, set(m) if isinstance(m, dict) else set(), _MEMBER_FIELDS))
    if not isinstance(m["name"], str) or not _NAME_RE.match(m["name"]):
        raise bad(f"{where}.name must be 1-64 letters, digits, '.', '_' or '-'")
    org = _hex_key(m["org_key"], f"{where}.org_key", bad)
    node = _hex_key(m["node_key"], f"{where}.node_key", bad)
    addrs = m["addresses"]
    if not isinstance(addrs, list) or len(addrs) > 16 or not all(
            isinstance(a, str) and a.startswith("/") and 1 < len(a) <= 256 for a in addrs):
        raise bad(f"{where}.addresses must be a list of multiaddr strings such as "
                  "'/ip4/127.0.0.1/tcp/7001'")
    roles = m["roles"]
    if not isinstance(roles, list) or not roles or not all(
            isinstance(r, str) and _ROLE_RE.match(r) for r in roles):
        raise bad(f"{where}.roles must be a non-empty list of lowercase role names "
                  f"(e.g. {', '.join(KNOWN_ROLES)})")
    if len(set(roles)) != len(roles):
        raise bad(f"{where}.roles lists a role twice")
    return Member(name=m["name"], org_key=org, node_key=node, addresses=tuple(addrs),
                  roles=tuple(roles))
