"""Provenance queries: plain functions over a reader with `get(key)` and `iter_prefix(prefix)`.

The reader is the node's LevelDB `Store` (a data directory), an in-memory state, or — once the
node exposes it — a remote reader behind the HTTP API; the functions do not care. Every answer is
a JSON-ready dict; identifiers appear as first recorded.

Graph walked (see `_keys.py`): trace back follows derived-from (transformation inputs) and
has-component / contains (what was installed or packed in, at any time); trace forward follows
derived-to, component-of and contained-in. Lot-level edges over-approximate, as EPCIS itself does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from ledger._codec import decode_trusted
from ledger.errors import ValidationError
from ledger.provenance import _keys as K
from ledger.provenance._ids import id_key
from ledger.provenance._rules import parse_time_ms

MAX_NODES = 100_000


class Reader(Protocol):
    def get(self, key: bytes) -> bytes | None: ...
    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]: ...


def _get(r: Reader, key: bytes) -> Any:
    raw = r.get(key)
    return None if raw is None else decode_trusted(raw)


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _obj(r: Reader, key: str) -> Any:
    return _get(r, K.obj(key))


def _require_obj(r: Reader, ident: str) -> tuple[str, dict[str, Any]]:
    key = id_key(ident)
    o = _obj(r, key)
    if o is None:
        raise ValidationError(f"identifier {ident} is not on the ledger", code="not_found")
    return key, o


def _label(r: Reader, key: str) -> str:
    o = _obj(r, key)
    return str(o["id"]) if o else key


def _edges(r: Reader, rel: bytes, key: str) -> list[tuple[str, Any]]:
    return [(K.tail(k), decode_trusted(v)) for k, v in r.iter_prefix(K.edge_prefix(rel, key))]


def _intervals(v: Any) -> list[dict[str, Any]]:
    return [{"from": _iso(iv[0]), "to": _iso(iv[1]), "event": iv[2], "endEvent": iv[3]}
            for iv in v]


def event_summary(r: Reader, eid: str, rec: Any = None) -> dict[str, Any] | None:
    if rec is None:
        rec = _get(r, K.event(eid))
    if rec is None:
        return None
    b = rec["b"]
    out = {"eventID": eid, "type": rec["k"], "eventTime": b.get("eventTime"),
           "action": b.get("action"), "bizStep": b.get("bizStep"),
           "disposition": b.get("disposition"),
           "bizLocation": (b.get("bizLocation") or {}).get("id"), "recordedBy": rec["org"],
           "height": rec["h"], "recordTime": _iso(rec["t"])}
    d = _get(r, K.declaration(eid))
    if d is not None:
        out["errorDeclaration"] = {**d["d"], "declaredBy": d["org"], "height": d["h"]}
    return out


def attestations_of(r: Reader, subject_key: str) -> list[dict[str, Any]]:
    out = []
    for _, cid in _edges(r, b"at", subject_key):
        a = _get(r, K.attestation(cid))
        if a is None:
            continue
        b = a["b"]
        out.append({"certId": cid, "issuer": a["org"], "standard": b.get("standard"),
                    "validFrom": b.get("validFrom"), "validTo": b.get("validTo"),
                    "result": b.get("result"), "uri": b.get("uri"),
                    "revoked": a["revoked"] is not None,
                    "revocation": a["revoked"]})
    return out


_UP_RELS = frozenset({"df", "cp", "co"})
_DOWN_RELS = frozenset({"dt", "cf", "ci"})


def _node_edges(r: Reader, key: str, o: Any, group: bytes) -> list[tuple[str, str, Any]]:
    """(rel, other node or eventID, payload) of one direction of `key`: the adjacency list in
    its record, plus the entries spilled to index keys (`gs` flag)."""
    if o is None:
        return []
    rels = _UP_RELS if group == K.UP else _DOWN_RELS
    out = [(rel, other, p) for rel, other, p in o.get("g", ()) if rel in rels]
    if o.get("gs"):
        for k, v in r.iter_prefix(K.node_prefix(group, key)):
            rel, tail = K.split_edge(k)
            out.append((rel.decode(), tail, decode_trusted(v)))
    return out


def _event_ids(r: Reader, key: str, o: Any) -> dict[str, int | None]:
    """eventID -> seq (None if not known from the index) of every event naming `key`."""
    found: dict[str, int | None] = {}
    if o is None:
        return found
    for n, eid in o.get("x", ()):
        found[eid] = n
    if o.get("xs"):
        for k, v in r.iter_prefix(K.obj_event_prefix(key)):
            found[decode_trusted(v)] = int.from_bytes(k[-8:], "big")
    for group in (K.UP, K.DOWN):
        for rel, tail, p in _node_edges(r, key, o, group):
            if rel in ("df", "dt"):
                found.setdefault(tail, None)
            else:
                for iv in p:
                    found.setdefault(iv[2], None)
                    if iv[3] is not None:
                        found.setdefault(iv[3], None)
    return found


def _cached_events(r: Reader, key: str, o: Any,
                   cache: dict[str, tuple[int, dict[str, Any]] | None]) -> list[dict[str, Any]]:
    """Summaries of the events naming `key`, in ledger order; a transformation names several
    nodes of one walk, so each event is read once per query."""
    out = []
    for eid in _event_ids(r, key, o):
        if eid not in cache:
            rec = _get(r, K.event(eid))
            s = None if rec is None else event_summary(r, eid, rec)
            cache[eid] = None if rec is None or s is None else (rec["seq"], s)
        hit = cache[eid]
        if hit is not None:
            out.append(hit)
    out.sort(key=lambda x: x[0])
    return [s for _, s in out]


def _object_event_seqs(r: Reader, key: str) -> list[tuple[int, str]]:
    """(seq, eventID) of every event naming `key`, in ledger order."""
    found = _event_ids(r, key, _obj(r, key))
    out = []
    for eid, n in found.items():
        if n is None:
            rec = _get(r, K.event(eid))
            if rec is None:
                continue
            n = rec["seq"]
        out.append((n, eid))
    return sorted(out)


def object_events(r: Reader, key: str) -> list[str]:
    """EventIDs naming `key`, in ledger order."""
    return [e for _, e in _object_event_seqs(r, key)]


def _state(o: dict[str, Any], r: Reader) -> dict[str, Any]:
    return {"id": o["id"], "level": "class" if o["c"] else "instance", "status": o["s"],
            "owner": None if o["c"] else o["own"],
            "custodian": None if o["c"] else o["cus"],
            "holders": list(o.get("hold", ())) if o["c"] else [o["cus"]],
            "commissionedBy": o["by"], "bizLocation": o.get("loc"),
            "disposition": o.get("disp"), "persistentDisposition": list(o.get("pd", ())),
            "container": _label(r, o["in"]) if o.get("in") else None,
            "installedIn": _label(r, o["of"]) if o.get("of") else None,
            "consumed": bool(o.get("used")), "passport": o.get("pp"),
            "openTransactions": [{"type": t, "bizTransaction": b} for t, b in o.get("btx", ())]}


# -- part show --------------------------------------------------------------------------------

def part_show(r: Reader, ident: str) -> dict[str, Any]:
    """Current state: owner, custodian, location, disposition, container/parent, passport."""
    key, o = _require_obj(r, ident)
    out = _state(o, r)
    out["key"] = key
    out["contains"] = [_label(r, k) for k in o.get("kc", ())]
    out["components"] = [_label(r, k) for k in o.get("ka", ())]
    evs = object_events(r, key)
    out["events"] = len(evs)
    out["firstEvent"] = event_summary(r, evs[0]) if evs else None
    out["lastEvent"] = event_summary(r, evs[-1]) if evs else None
    out["attestations"] = attestations_of(r, key)
    out["notices"] = notices_of(r, key)
    return out


def notices_of(r: Reader, key: str) -> list[dict[str, Any]]:
    out = []
    for _, nid in _edges(r, b"qn", key):
        n = _get(r, K.notice(nid))
        if n is not None:
            out.append({"noticeId": nid, "type": n["b"]["type"], "status": n["status"],
                        "issuer": n["org"], "severity": n["b"].get("severity")})
    return out


# -- trace back / forward ---------------------------------------------------------------------

_REL_NAMES = {"df": "derived-from", "cp": "component", "co": "contains",
              "dt": "derived-into", "cf": "component-of", "ci": "contained-in"}


def _neighbours(r: Reader, group: bytes, key: str, o: Any) -> list[tuple[str, str, Any]]:
    """(relation, other node, eventID or intervals) of one direction of `key`."""
    out: list[tuple[str, str, Any]] = []
    for rel, tail, p in _node_edges(r, key, o, group):
        name = _REL_NAMES[rel]
        if rel in ("df", "dt"):      # keyed by event: the payload lists the other ends
            out += [(name, other, tail) for other in p]
        else:
            out.append((name, tail, p))
    return out


def _walk(r: Reader, root: str, group: bytes, max_depth: int,
          with_events: bool, current_only: bool = False) -> dict[str, Any]:
    """Breadth-first walk of one direction of the genealogy from `root`. `current_only` skips
    containment and assembly edges whose last interval is closed (the part was removed)."""
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[dict[str, Any]] = []
    seen_events: dict[str, tuple[int, dict[str, Any]] | None] = {}
    frontier = [root]
    depth = {root: 0}
    while frontier:
        nxt = []
        for key in frontier:
            o = _obj(r, key)
            node: dict[str, Any] = {"id": o["id"] if o else key, "key": key, "depth": depth[key]}
            if o is not None:
                node.update({"level": "class" if o["c"] else "instance", "status": o["s"],
                             "holders": list(o.get("hold", ())) if o["c"] else [o["cus"]],
                             "owner": None if o["c"] else o["own"],
                             "commissionedBy": o["by"], "passport": o.get("pp")})
                if with_events:
                    node["events"] = _cached_events(r, key, o, seen_events)
                node["attestations"] = attestations_of(r, key) if o.get("att") else []
            nodes[key] = node
            if depth[key] >= max_depth:
                continue
            for name, other, val in _neighbours(r, group, key, o):
                if current_only and not isinstance(val, str) and val and val[-1][1] is not None:
                    continue
                e: dict[str, Any] = {"from": key, "to": other, "rel": name}
                if isinstance(val, str):
                    e["event"] = val
                else:
                    e["intervals"] = _intervals(val)
                edges.append(e)
                if other not in depth:
                    if len(depth) >= MAX_NODES:
                        raise ValidationError("the genealogy has more than "
                                              f"{MAX_NODES} nodes; narrow the query "
                                              "with --depth", code="too_large")
                    depth[other] = depth[key] + 1
                    nxt.append(other)
        frontier = nxt
    sources = {e["from"] for e in edges}
    for n in nodes.values():
        n["leaf"] = n["key"] not in sources
    return {"root": nodes[root]["id"], "rootKey": root, "nodes": list(nodes.values()),
            "edges": [{**e, "from": nodes[e["from"]]["id"], "to": nodes[e["to"]]["id"]}
                      for e in edges if e["to"] in nodes]}


def trace_back(r: Reader, ident: str, *, max_depth: int = 64,
               with_events: bool = True) -> dict[str, Any]:
    """Everything `ident` was made from, down to raw-material lots (with events and
    attestations on the way)."""
    key, _ = _require_obj(r, ident)
    out = _walk(r, key, K.UP, max_depth, with_events)
    out["direction"] = "back"
    leaves = [n for n in out["nodes"] if n["leaf"] and n["key"] != key]
    out["rawMaterials"] = [n["id"] for n in leaves if n.get("level") != "instance"]
    out["partsWithoutOrigin"] = [n["id"] for n in leaves if n.get("level") == "instance"]
    return out


def trace_forward(r: Reader, ident: str, *, max_depth: int = 64,
                  with_events: bool = False) -> dict[str, Any]:
    """Every product that contains or was made from `ident` (where-used), with holders."""
    key, _ = _require_obj(r, ident)
    out = _walk(r, key, K.DOWN, max_depth, with_events)
    out["direction"] = "forward"
    out["endItems"] = [{"id": n["id"], "holders": n.get("holders"), "owner": n.get("owner"),
                        "status": n.get("status")}
                       for n in out["nodes"] if n["leaf"] and n["key"] != key]
    return out


def recall(r: Reader, idents: Iterable[str]) -> dict[str, Any]:
    """Recall scope: every item downstream of `idents`, its last possessing party, owner and
    open business transactions; the end items (not inside anything else) separately.
    Products a part was removed from are not affected by it (the part went on without them)."""
    affected: dict[str, dict[str, Any]] = {}
    roots = []
    for ident in idents:
        key, _ = _require_obj(r, ident)
        roots.append(_label(r, key))
        tr = _walk(r, key, K.DOWN, 64, False, current_only=True)
        for n in tr["nodes"]:
            if n["key"] == key or n["key"] in affected:
                continue
            o = _obj(r, n["key"])
            if o is None:
                continue
            st = _state(o, r)
            affected[n["key"]] = {
                "id": o["id"], "level": st["level"], "status": st["status"],
                "lastPossessingParty": st["holders"], "owner": st["owner"],
                "openTransactions": st["openTransactions"], "endItem": n["leaf"],
                "passport": o.get("pp"), "bizLocation": o.get("loc")}
    items = list(affected.values())
    holders = sorted({h for i in items if i["endItem"] for h in i["lastPossessingParty"]})
    return {"recalled": roots, "affected": items,
            "endItems": [i for i in items if i["endItem"]],
            "holders": holders,
            "openTransactions": [{"id": i["id"], **t} for i in items
                                 for t in i["openTransactions"]]}


def bom(r: Reader, ident: str, *, max_depth: int = 16) -> dict[str, Any]:
    """Bill of materials as built: components (installed now or before) and packed contents,
    level by level, with the interval each was part of its parent, and the material lots."""
    key, _ = _require_obj(r, ident)

    def level(k: str, d: int, seen: set[str]) -> dict[str, Any]:
        o = _obj(r, k)
        node: dict[str, Any] = {"id": o["id"] if o else k, "components": [], "materials": []}
        if d >= max_depth or k in seen:
            return node
        seen = seen | {k}
        for rel, other, val in _node_edges(r, k, o, K.UP):
            if rel == "cp":
                sub = level(other, d + 1, seen)
                sub["installed"] = _intervals(val)
                sub["current"] = bool(val) and val[-1][1] is None
                node["components"].append(sub)
            elif rel == "df":
                node["materials"] += [{"id": _label(r, src), "event": other} for src in val]
        return node

    return level(key, 0, set())


# -- passports ----------------------------------------------------------------------------------

def open_sealed_item(item: dict[str, Any], org: str, key: Any) -> None:
    """Decrypt an entitled passport attribute of `passport_show`'s output in place, checking it
    against its commitment: a client does this with its own key, so the key never leaves it.

    Raises:
        VerificationError: the box does not open with `key`, or the value does not match.
    """
    from ledger.provenance._passport import open_attribute

    value, salt = open_attribute({"path": item["path"], "enc": {org: bytes.fromhex(item["sealed"])},
                                  "commit": bytes.fromhex(item["commitment"])}, org, key)
    item["value"] = value
    item["salt"] = salt.hex()
    item["verified"] = True


def passport_show(r: Reader, ident: str, *, as_org: str | None = None,
                  key: Any = None) -> dict[str, Any]:
    """A passport (by id or by its subject) filtered by tier for `as_org`, with its history and
    lineage. Restricted values are shown only to entitled organisations, and only decrypted
    when `key` (that organisation's SigningKey) is given; others see that a commitment exists."""
    p = _get(r, K.passport(ident))
    if p is None:
        o = _obj(r, id_key(ident))
        if o is None or not o.get("pp"):
            raise ValidationError(f"no passport {ident} (neither a passport id nor an "
                                  "identifier with a passport)", code="not_found")
        p = _get(r, K.passport(o["pp"]))
    pid = p["id"]
    entitled_tiers: set[str] = {"public"}
    if as_org is not None:
        org = _get(r, K.org(as_org))
        if org is None:
            raise ValidationError(f"organisation {as_org} does not exist", code="unknown_org")
    attrs = []
    for a in p["attrs"]:
        tier = a.get("tier", "public")
        item: dict[str, Any] = {"path": a["path"], "tier": tier}
        if tier in entitled_tiers:
            item["value"] = a["value"]
        else:
            item["commitment"] = a["commit"].hex()
            if as_org is not None and as_org in a.get("enc", {}):
                item["entitled"] = True
                item["sealed"] = a["enc"][as_org].hex()
                if key is not None:
                    open_sealed_item(item, as_org, key)
            else:
                item["entitled"] = False
        attrs.append(item)
    history = []
    for _, raw in r.iter_prefix(b"ph/" + pid.encode() + K.SEP):
        h = decode_trusted(raw)
        history.append({"change": h["change"], "by": h["by"], "status": h["status"],
                        "height": h["h"], "time": _iso(h["t"]),
                        "paths": [a["path"] for a in h["attrs"]]})

    def lineage(start: str, rel: bytes) -> list[str]:
        out, frontier, seen = [], [start], {start}
        while frontier:
            cur = frontier.pop()
            for other, _ in _edges(r, rel, cur):
                if other not in seen:
                    seen.add(other)
                    out.append(other)
                    frontier.append(other)
        return out

    skey = p["skey"]
    return {"passportId": pid, "subject": p["subject"], "level": p["level"],
            "profile": p["profile"], "issuer": p["org"], "responsible": p["resp"],
            "status": p["status"], "version": p["ver"], "viewer": as_org,
            "attributes": attrs, "history": history,
            "predecessors": lineage(pid, b"su"), "successors": lineage(pid, b"pr"),
            "attestations": attestations_of(r, skey)}


# -- events (EPCIS query filters) -------------------------------------------------------------

def events(r: Reader, *, match_any_epc: Sequence[str] = (), eq_biz_step: Sequence[str] = (),
           ge_event_time: str | None = None, lt_event_time: str | None = None,
           eq_biz_location: Sequence[str] = (), event_type: Sequence[str] = (),
           limit: int = 1000) -> list[dict[str, Any]]:
    """Events matching EPCIS query parameters (MATCH_anyEPC, EQ_bizStep, GE_/LT_eventTime,
    EQ_bizLocation, eventType), in ledger order, with error declarations attached."""
    ge = parse_time_ms(ge_event_time, "GE_eventTime") if ge_event_time else None
    lt = parse_time_ms(lt_event_time, "LT_eventTime") if lt_event_time else None
    if match_any_epc:
        seqs: dict[int, str] = {}
        for ident in match_any_epc:
            seqs.update(_object_event_seqs(r, id_key(ident)))
        eids: Iterable[str] = (seqs[s] for s in sorted(seqs))
    else:
        eids = (decode_trusted(v) for _, v in r.iter_prefix(b"es/"))
    steps = set(eq_biz_step)
    locs = {id_key(x) for x in eq_biz_location}
    types = set(event_type)
    out = []
    for eid in eids:
        rec = _get(r, K.event(eid))
        if rec is None:
            continue
        b = rec["b"]
        if types and rec["k"] not in types:
            continue
        if steps and b.get("bizStep") not in steps:
            continue
        if locs and id_key((b.get("bizLocation") or {}).get("id", "")) not in locs:
            continue
        if ge is not None and rec["tm"] < ge:
            continue
        if lt is not None and rec["tm"] >= lt:
            continue
        s = event_summary(r, eid)
        assert s is not None
        out.append(s)
        if len(out) >= limit:
            break
    return out
