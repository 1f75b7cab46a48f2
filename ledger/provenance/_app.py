"""The provenance state machine: validates and applies every transaction kind.

Theory of operation: `execute` walks the block's transactions in order over a three-layer view
of the state (base reader → block writes → this transaction's writes). Values in the layers are
decoded Python objects, treated as immutable (a handler copies a record before changing it, and
never changes a value after putting it), and encoded when their transaction commits, so a block
of events costs one decode per record read and one encode per record a transaction writes. A
handler either returns normally (its writes join the block) or raises
`ValidationError` (its writes are dropped and the `TxResult` carries the error's code and
sentence). Nothing here reads a clock, iterates a set, or verifies signatures (the caller does
that in batch), so every replica computes the same write set.

Object record (`obj/<idkey>`): `id` identifier as first recorded, `c` class-level (lot/product
class), `s` status (active | decommissioned | destroyed), `by` commissioning org, `own` owner,
`cus` custodian (possessing party), `hold` orgs holding part of a lot (class-level), `loc`
bizLocation, `disp` disposition, `pd` persistent dispositions, `in` container, `of` the product
it is installed in, `kc`/`ka` contained/installed children, `btx` open business transactions,
`used` consumed by a transformation, `pp` current passport, `att` has attestations, `ev` first
event, `lev` last event; with indexes on, `g` its genealogy adjacency list
(`[rel, other | eventID, payload]`, see `_keys.py`) and `x` the other events naming it
(`[seq, eventID]`), both bounded (`gs`/`xs` flag entries spilled to index keys).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, Protocol

from ledger import _accel, _native_py
from ledger._app import BlockContext, Execution, StateReader, TxResult, accepted
from ledger._codec import decode_trusted, encode
from ledger._crypto import sha256
from ledger._memstate import Overlay
from ledger._tx import Transaction
from ledger.errors import DecodeError, ValidationError
from ledger.provenance import _keys as K
from ledger.provenance._ids import company_digits, id_key, is_class_key
from ledger.provenance._rules import EventView, check_event, parse_time_ms, reject
from ledger.provenance._vocab import (
    BIZ_STEPS,
    CBV_URI_PREFIXES,
    DISPOSITIONS,
    EVENT_KINDS,
    KNOWN_ROLES,
    NOTICE_STATUSES,
    NOTICE_TYPES,
    PASSPORT_LEVELS,
    PASSPORT_STATUSES,
    PERMISSIONS,
    TIERS,
)

_MISS: Any = object()
#: adjacency entries kept inside an object's record (more spill to `gu/`/`gd/` index keys),
#: and events kept in its record (more spill to `xe/` keys): a hot lot used by thousands of
#: transformations keeps a bounded record
CAP_EDGES = 48
CAP_EVENTS = 32
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ID_RE = re.compile(r"^[\x21-\x7e]{1,256}$")
_PREFIX_RE = re.compile(r"^[0-9]{4,12}$")
MAX_ATTRS = 256


class MemberLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def org_key(self) -> bytes: ...
    @property
    def roles(self) -> Sequence[str]: ...


class GenesisLike(Protocol):
    @property
    def chain_id(self) -> bytes: ...
    @property
    def members(self) -> Sequence[MemberLike]: ...


class _Raw(bytes):
    """A value already in canonical encoding (index entries shared by many keys)."""

    __slots__ = ()


class _St:
    """Base reader + block layer + transaction layer of decoded values (None = deleted).

    A committed transaction's values are encoded at once into `writes` (the block's write
    set): they were just built and are still in the CPU caches, where encoding them after the
    last transaction of the block cost twice as much, though a record a later transaction
    rewrites is then encoded again.
    """

    __slots__ = ("base_get", "block", "cache", "tx", "writes")

    def __init__(self, base: StateReader) -> None:
        self.base_get = base.get
        self.block: dict[bytes, Any] = {}
        self.tx: dict[bytes, Any] = {}
        self.cache: dict[bytes, Any] = {}
        self.writes: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> Any:
        v = self.tx.get(key, _MISS)
        if v is _MISS:
            v = self.block.get(key, _MISS)
            if v is _MISS:
                v = self.cache.get(key, _MISS)
                if v is _MISS:
                    raw = self.base_get(key)
                    v = None if raw is None else decode_trusted(raw)
                    self.cache[key] = v
        return v

    def put(self, key: bytes, value: Any) -> None:
        self.tx[key] = value

    def commit(self) -> None:
        tx = self.tx
        self.block.update(tx)
        w = self.writes
        for k, v in tx.items():
            w[k] = None if v is None else v if type(v) is _Raw else encode(v)
        self.tx = {}

    def rollback(self) -> None:
        self.tx = {}


_CLAIMED_LENGTHS: dict[int, tuple[dict[str, str], tuple[int, ...]]] = {}


def _claimed_lengths(claims: dict[str, str]) -> tuple[int, ...]:
    """The distinct lengths of the claimed company prefixes, shortest first.

    Every new identifier is checked against the claims; trying only the lengths that are
    claimed (usually one or two) instead of all nine from 4 to 12 digits took the check from 5%
    of a validator's CPU to a fraction of that. Memoised per claims object: a state value is
    never changed in place (a new claim writes a new dict), and the entry holds the object so
    its id cannot be reused while cached.
    """
    hit = _CLAIMED_LENGTHS.get(id(claims))
    if hit is not None and hit[0] is claims:
        return hit[1]
    lengths = tuple(sorted({len(p) for p in claims if 4 <= len(p) <= 12}))
    if len(_CLAIMED_LENGTHS) >= 64:
        _CLAIMED_LENGTHS.clear()
    _CLAIMED_LENGTHS[id(claims)] = (claims, lengths)
    return lengths


class _Ctx:
    """What a handler knows about the transaction it applies."""

    __slots__ = ("block", "index", "org", "perms", "roles", "st", "time_ms", "tx")

    def __init__(self, st: _St, block: BlockContext, tx: Transaction, org: str,
                 roles: list[str], index: bool) -> None:
        self.st, self.block, self.tx, self.org, self.roles = st, block, tx, org, roles
        self.perms = _perms(tuple(roles))
        self.index = index
        self.time_ms = block.time_ms

    def need(self, perm: str, kind: str) -> None:
        if perm not in self.perms:
            raise reject("permission_denied", f"{kind}: organisation {self.org} (roles "
                         f"{', '.join(self.roles)}) lacks the permission {perm}")


@lru_cache(maxsize=256)
def _perms(roles: tuple[str, ...]) -> frozenset[str]:
    """The permissions of a role list (organisations share a handful of role lists)."""
    perms: set[str] = set()
    for r in roles:
        perms |= PERMISSIONS.get(r, frozenset())
    return frozenset(perms)


def _str(body: dict[str, Any], field: str, kind: str, *, required: bool = True,
         pattern: re.Pattern[str] | None = _ID_RE) -> Any:
    v = body.get(field)
    if v is None:
        if required:
            raise reject("missing_field", f"{kind}.{field} is required")
        return None
    if not isinstance(v, str) or (pattern is not None and not pattern.match(v)) or len(v) > 4096:
        raise reject("bad_field", f"{kind}.{field} must be a short printable string")
    return v


def _only(body: dict[str, Any], kind: str, allowed: frozenset[str]) -> None:
    extra = [f for f in body if f not in allowed]
    if extra:
        raise reject("unknown_field", f"{kind} has no field {sorted(extra)[0]!r}")


#: shorter runs of ObjectEvents between other kinds stay with the reference: cutting the block
#: there costs more than the native path saves
NATIVE_MIN_RUN = 8


def _runs(txs: Sequence[Transaction]) -> list[tuple[bool, Sequence[Transaction]]]:
    """`txs` cut into maximal runs, each marked True when it is a run of ObjectEvents for the
    native path (at least `NATIVE_MIN_RUN` long, or the whole block)."""
    cuts: list[tuple[bool, int, int]] = []
    start = 0
    for i in range(1, len(txs) + 1):
        if i == len(txs) or (txs[i].kind == "ObjectEvent") != (txs[start].kind == "ObjectEvent"):
            native = txs[start].kind == "ObjectEvent" and (
                i - start >= NATIVE_MIN_RUN or (start == 0 and i == len(txs)))
            if cuts and not native and not cuts[-1][0]:
                cuts[-1] = (False, cuts[-1][1], i)  # join the reference runs
            else:
                cuts.append((native, start, i))
            start = i
    return [(native, txs[a:b]) for native, a, b in cuts] or [(False, txs)]


class ProvenanceApp:
    """The `Application` of partledger: EPCIS events, organisations, custody, passports.

    Args:
        index: also write the genealogy and lookup indexes (`g/`, `xe/`); benchmarks turn
            it off to measure what the indexes cost. Queries need it on.
    """

    def __init__(self, *, index: bool = True) -> None:
        self.index = index
        h: dict[str, Callable[[_Ctx, dict[str, Any]], None]] = {
            "OrgRegister": self._org_register, "OrgSetRoles": self._org_set_roles,
            "AgentAdd": self._agent_add, "AgentSetActive": self._agent_set_active,
            "PrefixClaim": self._prefix_claim,
            "CustodyPropose": self._custody_propose, "CustodyAnswer": self._custody_answer,
            "AttestationIssue": self._attestation_issue,
            "AttestationRevoke": self._attestation_revoke,
            "QualityNotice": self._notice, "QualityNoticeUpdate": self._notice_update,
            "PassportIssue": self._passport_issue, "PassportUpdate": self._passport_update,
            "PassportStatus": self._passport_status,
            "PassportSupersede": self._passport_supersede,
        }
        for k in EVENT_KINDS:
            h[k] = self._make_event_handler(k)
        self._handlers = h
        self._native: tuple[object, Any] | None = None

    @property
    def kinds(self) -> list[str]:
        return sorted(self._handlers)

    # -- Application protocol -------------------------------------------------------------
    def genesis_writes(self, genesis: object) -> dict[bytes, bytes | None]:
        """Members become organisations, their org keys active agents, roles from genesis."""
        g: GenesisLike = genesis  # type: ignore[assignment]
        out: dict[bytes, bytes | None] = {}
        for m in g.members:
            out[K.org(m.name)] = encode({"name": m.name, "roles": list(m.roles),
                                         "key": bytes(m.org_key), "active": True})
            out[K.agent(bytes(m.org_key))] = encode({"org": m.name, "active": True})
        return out

    def execute(self, state: StateReader, ctx: BlockContext,
                txs: Sequence[Transaction]) -> Execution:
        """The reference's answer, computed natively where the extension can.

        The block is cut into runs of transactions: runs of at least `NATIVE_MIN_RUN`
        ObjectEvents go to `execute_native`, the rest (and any run it declines) to
        `execute_reference`, each run on top of the writes of the runs before it, which is
        what the reference does for the whole block in one go."""
        if self._native_executor() is None:
            return self.execute_reference(state, ctx, txs)
        runs = _runs(txs)
        if len(runs) == 1:
            return self._execute_run(state, ctx, *runs[0])
        view = Overlay(state)
        results: list[TxResult] = []
        for native, part in runs:
            ex = self._execute_run(view, ctx, native, part)
            view.update(ex.writes)
            results += ex.results
        return Execution(writes=view.writes, results=results)

    def _execute_run(self, state: StateReader, ctx: BlockContext, native: bool,
                     txs: Sequence[Transaction]) -> Execution:
        fast = self.execute_native(state, ctx, txs) if native else None
        return fast if fast is not None else self.execute_reference(state, ctx, txs)

    def execute_native(self, state: StateReader, ctx: BlockContext,
                       txs: Sequence[Transaction]) -> Execution | None:
        """The native executor's result (the Rust extension's `EventExecutor`), or None: no
        extension loaded, or it declined the transactions.

        It takes only ObjectEvents, and only when the reference would accept every one of
        them (native/core/src/events.rs says which fields and identifier forms), and then
        gives exactly the reference's write set (tests/property/test_native_events.py);
        anything else (any rejection included) is declined."""
        if not txs or any(tx.kind != "ObjectEvent" for tx in txs):
            return None
        executor = self._native_executor()
        if executor is None:
            return None
        # a store's key filter answers the block's many reads of new keys natively; only the
        # store itself has one (an overlay's writes are not in it)
        state_filter = getattr(state, "state_filter", None)
        absent = state_filter() if state_filter is not None else None
        if absent is not None and not isinstance(absent[0], _accel.backend.KeyFilter):
            absent = None  # the pure-Python twin's filter (a test that swapped backends)
        tx_ids = [tx.tx_id for tx in txs]
        writes = executor.execute(state.get, ctx.chain, ctx.height, ctx.time_ms,
                                  [tx.encode() for tx in txs], tx_ids, *(absent or ()))
        if writes is None:
            return None
        return Execution(writes=writes, results=accepted(tx_ids))

    def _native_executor(self) -> Any:
        """The extension's executor for this app's settings (None under the pure-Python twin),
        made once per backend: tests swap `_accel.backend` at run time."""
        backend = _accel.backend
        if self._native is None or self._native[0] is not backend:
            executor = None if backend is _native_py else backend.EventExecutor(
                biz_steps=sorted(BIZ_STEPS), dispositions=sorted(DISPOSITIONS),
                cbv_prefixes=list(CBV_URI_PREFIXES),
                write_roles=sorted(r for r, p in PERMISSIONS.items() if "event.write" in p),
                cap_events=CAP_EVENTS, index=self.index)
            self._native = (backend, executor)
        return self._native[1]

    def execute_reference(self, state: StateReader, ctx: BlockContext,
                          txs: Sequence[Transaction]) -> Execution:
        """The state machine in Python: the definition every other path must agree with."""
        st = _St(state)
        results: list[TxResult] = []
        for tx in txs:
            try:
                self._apply(st, ctx, tx)
            except ValidationError as exc:
                st.rollback()
                results.append(TxResult(tx_id=tx.tx_id, ok=False, code=exc.code,
                                        reason=exc.message))
                continue
            except (TypeError, ValueError, KeyError, AttributeError, IndexError,
                    DecodeError) as exc:
                st.rollback()
                results.append(TxResult(tx_id=tx.tx_id, ok=False, code="malformed_body",
                                        reason=f"{tx.kind}: body is malformed "
                                        f"({type(exc).__name__})"))
                continue
            st.commit()
            results.append(TxResult(tx_id=tx.tx_id, ok=True))
        return Execution(writes=st.writes, results=results)

    def check(self, state: StateReader, ctx: BlockContext, tx: Transaction) -> TxResult:
        """Would `tx` be accepted on top of `state`? (mempool admission; writes nothing)."""
        return self.execute(state, ctx, [tx]).results[0]

    # -- envelope --------------------------------------------------------------------------
    def _apply(self, st: _St, block: BlockContext, tx: Transaction) -> None:
        if tx.chain != block.chain:
            raise reject("wrong_chain", "chain: the transaction is for another chain")
        ag = st.get(K.agent(tx.signer))
        if ag is None:
            raise reject("unknown_signer", f"signer {tx.signer.hex()[:16]}… is not an agent of "
                         "any organisation")
        if not ag["active"]:
            raise reject("inactive_agent", f"signer {tx.signer.hex()[:16]}… is a deactivated "
                         f"agent of {ag['org']}")
        org = st.get(K.org(ag["org"]))
        if org is None or not org["active"]:
            raise reject("inactive_org", f"organisation {ag['org']} is not active")
        last = st.get(K.nonce(tx.signer))
        expected = 0 if last is None else last + 1
        if tx.nonce != expected:
            raise reject("bad_nonce", f"nonce {tx.nonce} is not the signer's next nonce "
                         f"{expected}")
        handler = self._handlers.get(tx.kind)
        if handler is None:
            raise reject("unknown_kind", f"kind {tx.kind!r} is not a transaction kind")
        body = tx.body if isinstance(tx.body, dict) else dict(tx.body)
        handler(_Ctx(st, block, tx, ag["org"], list(org["roles"]), self.index), body)
        st.put(K.nonce(tx.signer), tx.nonce)

    # -- organisations, agents, prefixes ----------------------------------------------------
    def _roles(self, v: Any, kind: str) -> list[str]:
        if not isinstance(v, list) or not v or not all(isinstance(r, str) for r in v):
            raise reject("bad_field", f"{kind}.roles must be a non-empty list of role names")
        bad = [r for r in v if r not in KNOWN_ROLES]
        if bad:
            raise reject("unknown_role", f"{kind}.roles: {bad[0]!r} is not a role (known: "
                         f"{', '.join(sorted(KNOWN_ROLES))})")
        if len(set(v)) != len(v):
            raise reject("bad_field", f"{kind}.roles lists a role twice")
        return list(v)

    def _org_register(self, c: _Ctx, body: dict[str, Any]) -> None:
        kind = "OrgRegister"
        _only(body, kind, frozenset({"orgId", "name", "key", "roles"}))
        c.need("org.register", kind)
        oid = _str(body, "orgId", kind, pattern=_NAME_RE)
        key = body.get("key")
        if not isinstance(key, bytes) or len(key) != 32:
            raise reject("bad_field", f"{kind}.key must be a 32-byte Ed25519 public key")
        roles = self._roles(body.get("roles"), kind)
        if "validator" in roles:
            raise reject("validator_role_fixed", f"{kind}.roles: the validator role is set by "
                         "the genesis file only")
        if c.st.get(K.org(oid)) is not None:
            raise reject("org_exists", f"{kind}.orgId {oid} already exists")
        if c.st.get(K.agent(key)) is not None:
            raise reject("agent_exists", f"{kind}.key is already an agent")
        name = _str(body, "name", kind, required=False, pattern=None) or oid
        c.st.put(K.org(oid), {"name": name, "roles": roles, "key": key, "active": True})
        c.st.put(K.agent(key), {"org": oid, "active": True})

    def _org_set_roles(self, c: _Ctx, body: dict[str, Any]) -> None:
        kind = "OrgSetRoles"
        _only(body, kind, frozenset({"orgId", "roles"}))
        c.need("org.register", kind)
        oid = _str(body, "orgId", kind, pattern=_NAME_RE)
        o = c.st.get(K.org(oid))
        if o is None:
            raise reject("unknown_org", f"{kind}.orgId {oid} does not exist")
        roles = self._roles(body.get("roles"), kind)
        if ("validator" in roles) != ("validator" in o["roles"]):
            raise reject("validator_role_fixed", f"{kind}.roles: the validator role is set by "
                         "the genesis file only")
        c.st.put(K.org(oid), {**o, "roles": roles})

    def _agent_add(self, c: _Ctx, body: dict[str, Any]) -> None:
        kind = "AgentAdd"
        _only(body, kind, frozenset({"key"}))
        c.need("agent.manage", kind)
        key = body.get("key")
        if not isinstance(key, bytes) or len(key) != 32:
            raise reject("bad_field", f"{kind}.key must be a 32-byte Ed25519 public key")
        if c.st.get(K.agent(key)) is not None:
            raise reject("agent_exists", f"{kind}.key is already an agent")
        c.st.put(K.agent(key), {"org": c.org, "active": True})

    def _agent_set_active(self, c: _Ctx, body: dict[str, Any]) -> None:
        kind = "AgentSetActive"
        _only(body, kind, frozenset({"key", "active"}))
        c.need("agent.manage", kind)
        key, active = body.get("key"), body.get("active")
        if not isinstance(key, bytes) or len(key) != 32 or not isinstance(active, bool):
            raise reject("bad_field", f"{kind} needs key (32 bytes) and active (bool)")
        a = c.st.get(K.agent(key))
        if a is None or a["org"] != c.org:
            raise reject("permission_denied", f"{kind}.key is not an agent of {c.org}")
        if key == c.tx.signer:
            raise reject("self_deactivation", f"{kind}: an agent cannot change its own status")
        c.st.put(K.agent(key), {**a, "active": active})

    def _prefix_claim(self, c: _Ctx, body: dict[str, Any]) -> None:
        kind = "PrefixClaim"
        _only(body, kind, frozenset({"prefix"}))
        c.need("prefix.claim", kind)
        p = _str(body, "prefix", kind, pattern=_PREFIX_RE)
        claims = dict(c.st.get(K.PREFIXES) or {})
        for q, owner in claims.items():
            if q.startswith(p) or p.startswith(q):
                if owner == c.org and q == p:
                    raise reject("prefix_claimed", f"{kind}.prefix {p} is already claimed by "
                                 f"{c.org}")
                if owner != c.org:
                    raise reject("prefix_claimed", f"{kind}.prefix {p} overlaps prefix {q} "
                                 f"claimed by {owner}")
        claims[p] = c.org
        c.st.put(K.PREFIXES, claims)

    def _check_prefix(self, c: _Ctx, key: str, uri: str, field: str) -> None:
        claims = c.st.get(K.PREFIXES)
        if not claims:
            return
        d = company_digits(key)
        if not d:
            return
        for n in _claimed_lengths(claims):
            if n > len(d):
                break
            owner = claims.get(d[:n])
            if owner is not None and owner != c.org:
                raise reject("foreign_prefix", f"{field} {uri} is under GS1 company prefix "
                             f"{d[:n]} claimed by {owner}; only {owner} may introduce it")

    # -- EPCIS events ------------------------------------------------------------------------
    def _make_event_handler(self, kind: str) -> Callable[[_Ctx, dict[str, Any]], None]:
        def handler(c: _Ctx, body: dict[str, Any]) -> None:
            self._event(c, kind, body)
        return handler

    def _event(self, c: _Ctx, kind: str, body: dict[str, Any]) -> None:
        c.need("event.write", kind)
        view = check_event(kind, body)
        st = c.st
        eid = body.get("eventID") or derived_event_id(body)
        ekey = K.event(eid)
        existing = st.get(ekey)
        ed = body.get("errorDeclaration")
        decl = {"d": ed, "org": c.org, "tx": c.tx.tx_id, "h": c.block.height, "t": c.time_ms}
        if existing is not None:
            if ed is None:
                raise reject("duplicate_event", f"eventID {eid} is already recorded (to declare "
                             "it erroneous, resubmit it with an errorDeclaration)")
            if existing["org"] != c.org:
                raise reject("not_original_submitter", f"eventID {eid} was recorded by "
                             f"{existing['org']}; only it may declare the event erroneous")
            if st.get(K.declaration(eid)) is not None:
                raise reject("already_declared", f"eventID {eid} already has an error "
                             "declaration")
            st.put(K.declaration(eid), decl)
            return
        n = st.get(K.SEQ) or 0
        st.put(K.SEQ, n + 1)
        st.put(ekey, {"k": kind, "b": body, "org": c.org, "tx": c.tx.tx_id, "h": c.block.height,
                      "t": c.time_ms, "seq": n, "tm": view.time_ms})
        st.put(K.seq(n), eid)
        if ed is not None:
            # a declaration of an event recorded elsewhere (imported history): keep both, the
            # erroneous event has no effect on state
            st.put(K.declaration(eid), decl)
            if c.index:
                for key in _all_keys(view):
                    st.put(K.obj_event(key, n), eid)
            return
        touched = _Touched(self, c, eid, view)
        if kind == "ObjectEvent":
            self._object_event(touched, view)
        elif kind == "AggregationEvent":
            self._hierarchy_event(touched, view, body, assembly=False)
        elif kind == "AssociationEvent":
            self._hierarchy_event(touched, view, body, assembly=True)
        elif kind == "TransformationEvent":
            self._transformation_event(touched, view, body, eid)
        else:
            self._transaction_event(touched, view, body)
        touched.finish(body, n)

    def _object_event(self, t: _Touched, v: EventView) -> None:
        add = v.action == "ADD"
        for uri in v.epcs:
            o = t.use(uri, "epcList", commission=add)
            if v.action == "DELETE":
                o["s"] = "decommissioned"
        for uri in v.classes:
            t.use(uri, "quantityList.epcClass", commission=add)

    def _hierarchy_event(self, t: _Touched, v: EventView, body: dict[str, Any], *,
                         assembly: bool) -> None:
        link, kids, rel_up, rel_down = (("of", "ka", "cf", "cp") if assembly
                                        else ("in", "kc", "ci", "co"))
        what = "installed in" if assembly else "contained in"
        if v.parent is None:       # AggregationEvent OBSERVE without parent
            for uri in v.children:
                t.use(uri, "childEPCs")
            for uri in v.child_classes:
                t.use(uri, "childQuantityList.epcClass")
            return
        pkey = id_key(v.parent)
        parent = t.use(v.parent, "parentID")
        if v.action == "ADD":
            for uri in v.children:
                child = t.use(uri, "childEPCs")
                ckey = id_key(uri)
                cur = child.get(link)
                if cur is not None and cur != pkey:
                    raise reject("already_" + ("installed" if assembly else "contained"),
                                 f"childEPCs {uri} is already {what} "
                                 f"{t.obj_id(cur)}; remove it first (action DELETE)")
                if cur is None:
                    child[link] = pkey
                    parent[kids] = [*parent.get(kids, ()), ckey]
                t.open_edge(rel_up, rel_down, ckey, pkey)
            for uri in v.child_classes:
                t.use(uri, "childQuantityList.epcClass")
                t.open_edge(rel_up, rel_down, id_key(uri), pkey)
        elif v.action == "DELETE":
            listed = v.children if "childEPCs" in body or "childQuantityList" in body else [
                t.obj_id(k) for k in parent.get(kids, ())]
            for uri in listed:
                ckey = id_key(uri)
                if ckey not in t.objs and t.c.st.get(K.obj(ckey)) is None:
                    t.use(uri, "childEPCs")   # unseen (imported history): nothing to undo
                    continue
                child = t.load(ckey, uri, "childEPCs")
                if child.get(link) != pkey:
                    raise reject("not_" + ("installed" if assembly else "contained"),
                                 f"childEPCs {uri} is not {what} {v.parent}")
                child.pop(link, None)
                child["cus"], child["own"] = parent["cus"], parent["own"]
                parent[kids] = [k for k in parent.get(kids, ()) if k != ckey]
                t.close_edge(rel_up, rel_down, ckey, pkey)
            for uri in v.child_classes:
                t.use(uri, "childQuantityList.epcClass")
                t.close_edge(rel_up, rel_down, id_key(uri), pkey)
        else:
            for uri in v.children:
                t.use(uri, "childEPCs")
            for uri in v.child_classes:
                t.use(uri, "childQuantityList.epcClass")

    def _transformation_event(self, t: _Touched, v: EventView, body: dict[str, Any],
                              eid: str) -> None:
        ins: list[str] = []
        outs: list[str] = []
        for uri in v.inputs:
            t.use(uri, "inputEPCList")["used"] = True
            ins.append(id_key(uri))
        for uri in v.input_classes:
            t.use(uri, "inputQuantityList.epcClass")["used"] = True
            ins.append(id_key(uri))
        for uri in v.outputs:
            t.use(uri, "outputEPCList", commission=True)
            outs.append(id_key(uri))
        for uri in v.output_classes:
            t.use(uri, "outputQuantityList.epcClass", commission=True)
            outs.append(id_key(uri))
        ins, outs = list(dict.fromkeys(ins)), list(dict.fromkeys(outs))
        overlap = [k for k in ins if k in outs]
        if overlap:
            raise reject("self_derivation", f"identifier {t.obj_id(overlap[0])} is both input "
                         "and output of the transformation")
        pairs = [(o, i) for o in outs for i in ins]
        tid = body.get("transformationID")
        if tid is not None:
            rec = t.c.st.get(K.transformation(tid)) or {"in": [], "out": []}
            pairs += [(o, i) for o in outs for i in rec["in"] if i not in ins]
            pairs += [(o, i) for o in rec["out"] for i in ins if o not in outs]
            t.c.st.put(K.transformation(tid), {
                "in": list(dict.fromkeys([*rec["in"], *ins])),
                "out": list(dict.fromkeys([*rec["out"], *outs]))})
        if t.c.index:
            # one key per output (its inputs) and per input (its outputs) for this event
            ups: dict[str, list[str]] = {}
            downs: dict[str, list[str]] = {}
            for o, i in pairs:
                if o != i:
                    ups.setdefault(o, []).append(i)
                    downs.setdefault(i, []).append(o)
            for o, lst in ups.items():
                t.add_edge(o, "df", eid, lst)
            for i, lst in downs.items():
                t.add_edge(i, "dt", eid, lst)

    def _transaction_event(self, t: _Touched, v: EventView, body: dict[str, Any]) -> None:
        btx = [[b.get("type", ""), b["bizTransaction"]] for b in body["bizTransactionList"]]
        objs = [t.use(u, "epcList") for u in v.epcs]
        objs += [t.use(u, "quantityList.epcClass") for u in v.classes]
        if v.parent is not None:
            objs.append(t.use(v.parent, "parentID"))
        for o in objs:
            cur = list(o.get("btx", ()))
            if v.action == "ADD":
                cur += [b for b in btx if b not in cur]
            elif v.action == "DELETE":
                cur = [b for b in cur if b not in btx]
            o["btx"] = cur

    # -- custody and ownership -------------------------------------------------------------
    def _custody_propose(self, c: _Ctx, body: dict[str, Any]) -> None:
        kind = "CustodyPropose"
        _only(body, kind, frozenset({"proposalId", "epcs", "role", "to"}))
        c.need("custody", kind)
        pid = _str(body, "proposalId", kind)
        role = body.get("role")
        if role not in ("custodian", "owner", "both"):
            raise reject("bad_field", f"{kind}.role must be custodian, owner or both")
        to = _str(body, "to", kind, pattern=_NAME_RE)
        target = c.st.get(K.org(to))
        if target is None or not target["active"]:
            raise reject("unknown_org", f"{kind}.to {to} is not an active organisation")
        if to == c.org:
            raise reject("self_transfer", f"{kind}.to names the proposing organisation")
        if c.st.get(K.proposal(pid)) is not None:
            raise reject("duplicate_id", f"{kind}.proposalId {pid} already exists")
        epcs = body.get("epcs")
        if not isinstance(epcs, list) or not 0 < len(epcs) <= 10_000:
            raise reject("bad_field", f"{kind}.epcs must be a non-empty list of identifiers")
        keys = []
        for i, uri in enumerate(epcs):
            if not isinstance(uri, str):
                raise reject("bad_identifier", f"{kind}.epcs[{i}] must be an identifier")
            key = id_key(uri)
            o = c.st.get(K.obj(key))
            _check_can_hand_over(o, c.org, role, f"{kind}.epcs[{i}] {uri}")
            keys.append(key)
        if len(set(keys)) != len(keys):
            raise reject("duplicate_identifier", f"{kind}.epcs lists an identifier twice")
        c.st.put(K.proposal(pid), {"epcs": keys, "role": role, "from": c.org, "to": to,
                                   "status": "open", "h": c.block.height, "t": c.time_ms})

    def _custody_answer(self, c: _Ctx, body: dict[str, Any]) -> None:
        kind = "CustodyAnswer"
        _only(body, kind, frozenset({"proposalId", "response"}))
        c.need("custody", kind)
        pid = _str(body, "proposalId", kind)
        p = c.st.get(K.proposal(pid))
        if p is None:
            raise reject("unknown_proposal", f"{kind}.proposalId {pid} does not exist")
        resp = body.get("response")
        if resp not in ("accept", "reject", "cancel"):
            raise reject("bad_field", f"{kind}.response must be accept, reject or cancel")
        if p["status"] != "open":
            raise reject("proposal_closed", f"{kind}: proposal {pid} is already {p['status']}")
        if resp == "cancel" and c.org != p["from"]:
            raise reject("permission_denied", f"{kind}: only {p['from']} may cancel proposal "
                         f"{pid}")
        if resp != "cancel" and c.org != p["to"]:
            raise reject("permission_denied", f"{kind}: only {p['to']} may {resp} proposal "
                         f"{pid}")
        if resp == "accept":
            role = p["role"]
            for key in p["epcs"]:
                o = c.st.get(K.obj(key))
                _check_can_hand_over(o, p["from"], role, f"{kind}: proposal {pid} item {key}")
                self._transfer(c, key, p["from"], p["to"], role, 0)
        c.st.put(K.proposal(pid), {**p, "status": {"accept": "accepted", "reject": "rejected",
                                                   "cancel": "cancelled"}[resp],
                                   "closed_h": c.block.height})

    def _transfer(self, c: _Ctx, key: str, frm: str, to: str, role: str, depth: int) -> None:
        if depth > 64:
            raise reject("too_deep", "custody transfer: containment nests deeper than 64 levels")
        o = dict(c.st.get(K.obj(key)))
        if o["c"]:
            o["hold"] = list(dict.fromkeys([*o.get("hold", ()), to]))
        else:
            if role in ("custodian", "both"):
                o["cus"] = to
            if role in ("owner", "both"):
                o["own"] = to
        c.st.put(K.obj(key), o)
        for child in [*o.get("kc", ()), *o.get("ka", ())]:
            self._transfer(c, child, frm, to, role, depth + 1)

    # -- attestations and quality notices ---------------------------------------------------
    def _subject_key(self, c: _Ctx, subject: str, kind: str) -> str:
        if c.st.get(K.event(subject)) is not None:
            return "event:" + subject
        if _NAME_RE.match(subject) and c.st.get(K.org(subject)) is not None:
            return "org:" + subject
        key = id_key(subject)
        if c.st.get(K.obj(key)) is None:
            raise reject("unknown_subject", f"{kind}.subject {subject} is neither a recorded "
                         "object, event nor organisation")
        return key

    def _attestation_issue(self, c: _Ctx, body: dict[str, Any]) -> None:
        kind = "AttestationIssue"
        _only(body, kind, frozenset({"certId", "subject", "standard", "validFrom", "validTo",
                                     "docHash", "uri", "result"}))
        c.need("attestation.write", kind)
        cid = _str(body, "certId", kind)
        if c.st.get(K.attestation(cid)) is not None:
            raise reject("duplicate_id", f"{kind}.certId {cid} already exists")
        subject = _str(body, "subject", kind)
        _str(body, "standard", kind, pattern=None)
        _str(body, "uri", kind, required=False, pattern=None)
        _str(body, "result", kind, required=False, pattern=None)
        vf = body.get("validFrom")
        vt = body.get("validTo")
        f_ms = parse_time_ms(vf, f"{kind}.validFrom") if vf is not None else None
        t_ms = parse_time_ms(vt, f"{kind}.validTo") if vt is not None else None
        if f_ms is not None and t_ms is not None and t_ms < f_ms:
            raise reject("bad_interval", f"{kind}.validTo is before validFrom")
        dh = body.get("docHash")
        if dh is not None and (not isinstance(dh, bytes) or len(dh) != 32):
            raise reject("bad_field", f"{kind}.docHash must be a 32-byte SHA-256 digest")
        skey = self._subject_key(c, subject, kind)
        c.st.put(K.attestation(cid), {"b": body, "org": c.org, "skey": skey, "revoked": None,
                                      "h": c.block.height, "t": c.time_ms})
        o = c.st.get(K.obj(skey))
        if o is not None and not o.get("att"):
            c.st.put(K.obj(skey), {**o, "att": True})   # walks look attestations up only here
        if c.index:
            c.st.put(K.edge(b"at", skey, cid), cid)

    def _attestation_revoke(self, c: _Ctx, body: dict[str, Any]) -> None:
        kind = "AttestationRevoke"
        _only(body, kind, frozenset({"certId", "reason"}))
        c.need("attestation.write", kind)
        cid = _str(body, "certId", kind)
        reason = _str(body, "reason", kind, required=False, pattern=None) or ""
        a = c.st.get(K.attestation(cid))
        if a is None:
            raise reject("unknown_attestation", f"{kind}.certId {cid} does not exist")
        if a["org"] != c.org:
            raise reject("permission_denied", f"{kind}: only the issuer {a['org']} may revoke "
                         f"{cid}")
        if a["revoked"] is not None:
            raise reject("already_revoked", f"{kind}: attestation {cid} is already revoked")
        c.st.put(K.attestation(cid), {**a, "revoked": {"reason": reason, "h": c.block.height,
                                                       "t": c.time_ms}})

    def _notice(self, c: _Ctx, body: dict[str, Any]) -> None:
        kind = "QualityNotice"
        _only(body, kind, frozenset({"noticeId", "type", "affected", "severity", "description",
                                     "targets"}))
        c.need("notice.write", kind)
        nid = _str(body, "noticeId", kind)
        if c.st.get(K.notice(nid)) is not None:
            raise reject("duplicate_id", f"{kind}.noticeId {nid} already exists")
        ntype = body.get("type")
        if ntype not in NOTICE_TYPES:
            raise reject("bad_field", f"{kind}.type must be one of "
                         f"{', '.join(sorted(NOTICE_TYPES))}")
        _str(body, "severity", kind, required=False, pattern=None)
        _str(body, "description", kind, required=False, pattern=None)
        affected = body.get("affected")
        if not isinstance(affected, list) or not 0 < len(affected) <= 10_000:
            raise reject("bad_field", f"{kind}.affected must be a non-empty list of identifiers")
        keys = []
        for i, uri in enumerate(affected):
            if not isinstance(uri, str):
                raise reject("bad_identifier", f"{kind}.affected[{i}] must be an identifier")
            key = id_key(uri)
            o = c.st.get(K.obj(key))
            if o is None:
                raise reject("unknown_identifier", f"{kind}.affected[{i}] {uri} is not on the "
                             "ledger")
            if ntype != "investigation" and "notice.recall" not in c.perms and c.org not in (
                    o["by"], o["own"]) and c.org not in o.get("hold", ()):
                raise reject("permission_denied", f"{kind}: a {ntype} on {uri} needs its "
                             "maker or owner, or the authority role")
            keys.append(key)
        c.st.put(K.notice(nid), {"b": body, "org": c.org, "keys": keys, "status": "open",
                                 "h": c.block.height, "t": c.time_ms, "history": []})
        if c.index:
            for key in keys:
                c.st.put(K.edge(b"qn", key, nid), nid)

    def _notice_update(self, c: _Ctx, body: dict[str, Any]) -> None:
        kind = "QualityNoticeUpdate"
        _only(body, kind, frozenset({"noticeId", "status", "note"}))
        c.need("notice.write", kind)
        nid = _str(body, "noticeId", kind)
        n = c.st.get(K.notice(nid))
        if n is None:
            raise reject("unknown_notice", f"{kind}.noticeId {nid} does not exist")
        if n["org"] != c.org:
            raise reject("permission_denied", f"{kind}: only the issuer {n['org']} may update "
                         f"notice {nid}")
        status = body.get("status")
        if status not in NOTICE_STATUSES:
            raise reject("bad_field", f"{kind}.status must be open, closed or cancelled")
        if n["status"] != "open":
            raise reject("notice_closed", f"{kind}: notice {nid} is already {n['status']}")
        note = _str(body, "note", kind, required=False, pattern=None) or ""
        c.st.put(K.notice(nid), {**n, "status": status, "history": [
            *n["history"], {"status": status, "note": note, "h": c.block.height,
                            "t": c.time_ms}]})

    # -- passports ----------------------------------------------------------------------------
    def _attrs(self, c: _Ctx, v: Any, kind: str) -> list[dict[str, Any]]:
        if not isinstance(v, list) or len(v) > MAX_ATTRS:
            raise reject("bad_field", f"{kind}.attributes must be a list of at most {MAX_ATTRS}")
        out = []
        paths = set()
        for i, a in enumerate(v):
            where = f"{kind}.attributes[{i}]"
            if not isinstance(a, dict) or not isinstance(a.get("path"), str) or not a["path"]:
                raise reject("bad_field", f"{where} needs a path")
            if a["path"] in paths:
                raise reject("bad_field", f"{where}.path {a['path']} appears twice")
            paths.add(a["path"])
            tier = a.get("tier", "public")
            if tier not in TIERS:
                raise reject("bad_field", f"{where}.tier must be one of {', '.join(TIERS)}")
            extra = set(a) - {"path", "tier", "value", "commit", "enc", "static", "evidence"}
            if extra:
                raise reject("unknown_field", f"{where} has no field {sorted(extra)[0]!r}")
            if tier == "public":
                if "value" not in a or "commit" in a or "enc" in a:
                    raise reject("tier_violation", f"{where}: a public attribute carries its "
                                 "value in clear and no commitment")
            else:
                if "value" in a:
                    raise reject("tier_violation", f"{where}: a {tier} attribute must not carry "
                                 "its value in clear (send commit + enc)")
                cm, enc = a.get("commit"), a.get("enc")
                if not isinstance(cm, bytes) or len(cm) != 32:
                    raise reject("bad_field", f"{where}.commit must be a 32-byte commitment")
                if not isinstance(enc, dict) or not enc:
                    raise reject("bad_field", f"{where}.enc must map entitled organisations "
                                 "to sealed values")
                for org, blob in enc.items():
                    if c.st.get(K.org(org)) is None:
                        raise reject("unknown_org", f"{where}.enc names unknown organisation "
                                     f"{org}")
                    if not isinstance(blob, bytes) or not 48 <= len(blob) <= 65536:
                        raise reject("bad_field", f"{where}.enc[{org}] must be a sealed box")
            out.append(a)
        return out

    def _passport_common(self, c: _Ctx, body: dict[str, Any], kind: str,
                         preds: list[str]) -> None:
        pid = _str(body, "passportId", kind)
        if c.st.get(K.passport(pid)) is not None:
            raise reject("duplicate_id", f"{kind}.passportId {pid} already exists")
        subject = _str(body, "subject", kind, pattern=None)
        level = body.get("level", "item")
        if level not in PASSPORT_LEVELS:
            raise reject("bad_field", f"{kind}.level must be model, batch or item")
        profile = _str(body, "profile", kind, required=False, pattern=None) or "generic"
        attrs = self._attrs(c, body.get("attributes", []), kind)
        skey = id_key(subject)
        o = c.st.get(K.obj(skey))
        if o is None:
            raise reject("unknown_identifier", f"{kind}.subject {subject} is not on the ledger")
        if o["s"] != "active":
            raise reject("inactive_identifier", f"{kind}.subject {subject} is {o['s']}")
        if not _possesses(o, c.org) and o["by"] != c.org:
            raise reject("not_possessor", f"{kind}.subject {subject} is held by "
                         f"{o.get('cus')}, not by {c.org}")
        rec = {"id": pid, "subject": subject, "skey": skey, "level": level, "profile": profile,
               "org": c.org, "resp": c.org, "status": "original", "attrs": attrs, "ver": 1,
               "pred": preds, "succ": [], "h": c.block.height, "t": c.time_ms}
        c.st.put(K.passport(pid), rec)
        c.st.put(K.passport_history(pid, 1), {"attrs": attrs, "status": "original",
                                              "by": c.org, "h": c.block.height, "t": c.time_ms,
                                              "change": kind})
        c.st.put(K.obj(skey), {**o, "pp": pid})

    def _passport_issue(self, c: _Ctx, body: dict[str, Any]) -> None:
        kind = "PassportIssue"
        _only(body, kind, frozenset({"passportId", "subject", "level", "profile", "attributes"}))
        c.need("passport.write", kind)
        self._passport_common(c, body, kind, [])

    def _passport_supersede(self, c: _Ctx, body: dict[str, Any]) -> None:
        kind = "PassportSupersede"
        _only(body, kind, frozenset({"passportId", "subject", "level", "profile", "attributes",
                                     "predecessors", "status"}))
        c.need("passport.write", kind)
        preds = body.get("predecessors")
        if not isinstance(preds, list) or not preds or not all(isinstance(p, str)
                                                               for p in preds):
            raise reject("missing_field", f"{kind}.predecessors must list at least one passport")
        status = body.get("status", "remanufactured")
        if status not in ("reused", "repurposed", "remanufactured"):
            raise reject("bad_field", f"{kind}.status must be reused, repurposed or "
                         "remanufactured")
        pid = _str(body, "passportId", kind)
        for p in preds:
            old = c.st.get(K.passport(p))
            if old is None:
                raise reject("unknown_passport", f"{kind}.predecessors: {p} does not exist")
            if old["status"] == "ended":
                raise reject("passport_ended", f"{kind}.predecessors: {p} has ended")
            c.st.put(K.passport(p), {**old, "succ": [*old["succ"], pid]})
        self._passport_common(c, body, kind, list(preds))
        rec = c.st.get(K.passport(pid))
        c.st.put(K.passport(pid), {**rec, "status": status})
        if c.index:
            for p in preds:
                c.st.put(K.edge(b"su", pid, p), pid)
                c.st.put(K.edge(b"pr", p, pid), pid)

    def _passport_update(self, c: _Ctx, body: dict[str, Any]) -> None:
        kind = "PassportUpdate"
        _only(body, kind, frozenset({"passportId", "attributes"}))
        c.need("passport.write", kind)
        pid = _str(body, "passportId", kind)
        p = c.st.get(K.passport(pid))
        if p is None:
            raise reject("unknown_passport", f"{kind}.passportId {pid} does not exist")
        if p["status"] == "ended":
            raise reject("passport_ended", f"{kind}: passport {pid} has ended")
        if p["resp"] != c.org:
            raise reject("permission_denied", f"{kind}: only the responsible operator "
                         f"{p['resp']} may update passport {pid}")
        new = self._attrs(c, body.get("attributes"), kind)
        if not new:
            raise reject("missing_field", f"{kind}.attributes must not be empty")
        by_path = {a["path"]: a for a in p["attrs"]}
        for a in new:
            by_path[a["path"]] = a
        ver = p["ver"] + 1
        attrs = list(by_path.values())
        c.st.put(K.passport(pid), {**p, "attrs": attrs, "ver": ver})
        c.st.put(K.passport_history(pid, ver), {"attrs": new, "status": p["status"],
                                                "by": c.org, "h": c.block.height,
                                                "t": c.time_ms, "change": kind})

    def _passport_status(self, c: _Ctx, body: dict[str, Any]) -> None:
        kind = "PassportStatus"
        _only(body, kind, frozenset({"passportId", "status", "newResponsibleOrg"}))
        c.need("passport.write", kind)
        pid = _str(body, "passportId", kind)
        p = c.st.get(K.passport(pid))
        if p is None:
            raise reject("unknown_passport", f"{kind}.passportId {pid} does not exist")
        status = body.get("status")
        if status not in PASSPORT_STATUSES:
            raise reject("bad_field", f"{kind}.status must be one of "
                         f"{', '.join(sorted(PASSPORT_STATUSES))}")
        if p["status"] == "ended":
            raise reject("passport_ended", f"{kind}: passport {pid} has ended (terminal)")
        o = c.st.get(K.obj(p["skey"]))
        holder = o is not None and _possesses(o, c.org)
        if p["resp"] != c.org and not holder:
            raise reject("permission_denied", f"{kind}: only the responsible operator "
                         f"{p['resp']} or the holder may change passport {pid}")
        resp = p["resp"]
        nr = body.get("newResponsibleOrg")
        if nr is not None:
            if status != "waste":
                raise reject("bad_field", f"{kind}.newResponsibleOrg is only for status waste")
            if not isinstance(nr, str) or c.st.get(K.org(nr)) is None:
                raise reject("unknown_org", f"{kind}.newResponsibleOrg {nr} does not exist")
            resp = nr
        if status == "ended" and o is not None and o["s"] == "active" and not o.get("used"):
            raise reject("subject_not_recycled", f"{kind}: passport {pid} may end only after "
                         f"its subject {p['subject']} was decommissioned or consumed by a "
                         "transformation")
        ver = p["ver"] + 1
        c.st.put(K.passport(pid), {**p, "status": status, "resp": resp, "ver": ver})
        c.st.put(K.passport_history(pid, ver), {"attrs": [], "status": status, "by": c.org,
                                                "h": c.block.height, "t": c.time_ms,
                                                "change": kind, "resp": resp})


def derived_event_id(body: dict[str, Any]) -> str:
    """The eventID of an event submitted without one: a hash of its content (without
    `errorDeclaration` and `recordTime`), so a resubmission or a declaration of the same event
    finds it."""
    core = {k: v for k, v in body.items() if k not in ("errorDeclaration", "recordTime")}
    return f"ni:///sha-256;{sha256(encode(core)).hex()}?ver=partledger1"


def _possesses(o: dict[str, Any], org: str) -> bool:
    if o["c"]:
        return org in o.get("hold", ())
    return bool(o["cus"] == org or o["own"] == org)


def _check_can_hand_over(o: Any, org: str, role: str, where: str) -> None:
    if o is None:
        raise reject("unknown_identifier", f"{where} is not on the ledger")
    if o["s"] != "active":
        raise reject("inactive_identifier", f"{where} is {o['s']}")
    if o.get("in") is not None or o.get("of") is not None:
        raise reject("travels_with_parent", f"{where} is inside another object; hand over "
                     "the outermost one")
    if o["c"]:
        if org not in o.get("hold", ()):
            raise reject("not_possessor", f"{where} is not held by {org}")
        return
    if role in ("custodian", "both") and o["cus"] != org:
        raise reject("not_custodian", f"{where}: custodian is {o['cus']}, not {org}")
    if role in ("owner", "both") and o["own"] != org:
        raise reject("not_owner", f"{where}: owner is {o['own']}, not {org}")


def _all_keys(v: EventView) -> list[str]:
    ids = [*v.epcs, *v.classes, *v.children, *v.child_classes, *v.inputs, *v.input_classes,
           *v.outputs, *v.output_classes]
    if v.parent is not None:
        ids.append(v.parent)
    return list(dict.fromkeys(id_key(u) for u in ids))


class _Touched:
    """The objects one event reads and changes, written back once at the end."""

    __slots__ = ("_raw", "app", "c", "edged", "eid", "extra", "objs", "view")

    def __init__(self, app: ProvenanceApp, c: _Ctx, eid: str, view: EventView) -> None:
        self.app, self.c, self.eid, self.view = app, c, eid, view
        self.objs: dict[str, dict[str, Any]] = {}
        self.extra: dict[str, dict[str, Any]] = {}
        self._raw: _Raw | None = None
        # identifiers that got a genealogy edge naming this event: their event list entry
        # would repeat it (queries read events from edges too), so it is not written
        self.edged: set[str] = set()

    def raw_eid(self) -> _Raw:
        if self._raw is None:
            self._raw = _Raw(encode(self.eid))
        return self._raw

    def obj_id(self, key: str) -> str:
        o = self.objs.get(key) or self.c.st.get(K.obj(key))
        return str(o["id"]) if o else key

    def load(self, key: str, uri: str, field: str) -> dict[str, Any]:
        o = self.objs.get(key)
        if o is None:
            rec = self.c.st.get(K.obj(key))
            if rec is None:
                raise reject("unknown_identifier", f"{field} {uri} is not on the ledger")
            if rec["s"] != "active":
                raise reject("inactive_identifier", f"{field} {uri} is {rec['s']}; no event "
                             "may follow its decommissioning or destruction")
            o = self.objs[key] = dict(rec)
        return o

    def use(self, uri: str, field: str, *, commission: bool = False) -> dict[str, Any]:
        """The record of `uri`, created if unseen; checks status and possession."""
        key = id_key(uri)
        o = self.objs.get(key)
        if o is not None:
            return o
        c = self.c
        rec = c.st.get(K.obj(key))
        if rec is None:
            self.app._check_prefix(c, key, uri, field)
            cls = is_class_key(key) or field.endswith("epcClass")
            o = {"id": uri, "c": cls, "s": "active", "by": c.org, "own": c.org, "cus": c.org,
                 "ev": self.eid, "t": self.view.time_ms}
            if cls:
                o["hold"] = [c.org]
            self.objs[key] = o
            return o
        if rec["s"] != "active":
            raise reject("inactive_identifier", f"{field} {uri} is {rec['s']}; no event may "
                         "follow its decommissioning or destruction")
        if commission and not rec["c"]:
            raise reject("already_commissioned", f"{field} {uri} is already commissioned (by "
                         f"{rec['by']})")
        if not _possesses(rec, c.org):
            holder = ", ".join(rec.get("hold", ())) if rec["c"] else rec["cus"]
            raise reject("not_possessor", f"{field} {uri} is held by {holder}, not by {c.org}")
        o = self.objs[key] = dict(rec)
        return o

    def _rec(self, key: str) -> dict[str, Any]:
        """The record an edge attaches to: an object of this event, or (for edges reaching
        back to an earlier event through a transformationID) a record written only for it."""
        o = self.objs.get(key)
        if o is None:
            o = self.extra.get(key)
            if o is None:
                rec = self.c.st.get(K.obj(key))
                assert rec is not None, "an edge endpoint always has a record"
                o = self.extra[key] = dict(rec)
        return o

    def add_edge(self, key: str, rel: str, other: str, payload: Any) -> None:
        """Append an edge to `key`'s adjacency list: inside its record while short (no extra
        write: the event rewrites the record anyway), else as an index key (`gs` flag)."""
        o = self._rec(key)
        g = o.get("g", ())
        if len(g) < CAP_EDGES:
            o["g"] = [*g, [rel, other, payload]]
        else:
            o["gs"] = True
            self.c.st.put(K.edge(rel.encode(), key, other), payload)
        self.edged.add(key)

    def _interval(self, key: str, rel: str, other: str, close: bool) -> None:
        o = self._rec(key)
        g = o.get("g", ())
        for i, (r, oth, iv) in enumerate(g):
            if r == rel and oth == other:
                new = self._step(iv, close)
                if new is not None:
                    o["g"] = [*g[:i], [rel, other, new], *g[i + 1:]]
                    self.edged.add(key)
                return
        if o.get("gs"):
            k = K.edge(rel.encode(), key, other)
            cur = self.c.st.get(k)
            if cur is not None:
                new = self._step(cur, close)
                if new is not None:
                    self.c.st.put(k, new)
                    self.edged.add(key)
                return
        new = self._step([], close)
        if new is not None:
            self.add_edge(key, rel, other, new)

    def _step(self, cur: list[Any], close: bool) -> list[Any] | None:
        """Intervals [[from, to, event, end event]...] after opening or closing one (None: no
        change: already open, or nothing open to close)."""
        t = self.view.time_ms
        if close:
            if not cur or cur[-1][1] is not None:
                return None
            return [*cur[:-1], [cur[-1][0], t, cur[-1][2], self.eid]]
        if cur and cur[-1][1] is None:
            return None
        return [*cur, [t, None, self.eid, None]]

    def open_edge(self, up: str, down: str, child: str, parent: str) -> None:
        if self.c.index:
            self._interval(child, up, parent, False)
            self._interval(parent, down, child, False)

    def close_edge(self, up: str, down: str, child: str, parent: str) -> None:
        if self.c.index:
            self._interval(child, up, parent, True)
            self._interval(parent, down, child, True)

    def finish(self, body: dict[str, Any], n: int) -> None:
        v = self.view
        destroyed = v.biz_step == "destroying" or v.disposition == "destroyed"
        pd = body.get("persistentDisposition")
        st = self.c.st
        for key, o in self.objs.items():
            if v.biz_location is not None:
                o["loc"] = v.biz_location
            if v.disposition is not None:
                o["disp"] = v.disposition
            if pd is not None:
                cur = [x for x in o.get("pd", ()) if x not in pd.get("unset", ())]
                o["pd"] = list(dict.fromkeys([*cur, *pd.get("set", ())]))
            if destroyed and not o["c"]:
                o["s"] = "destroyed"
            o["lev"] = self.eid
            if self.c.index and key not in self.edged:
                x = o.get("x", ())
                if len(x) < CAP_EVENTS:
                    o["x"] = [*x, [n, self.eid]]
                else:
                    o["xs"] = True
                    st.put(K.obj_event(key, n), self.raw_eid())
            st.put(K.obj(key), o)
        for key, o in self.extra.items():
            st.put(K.obj(key), o)
