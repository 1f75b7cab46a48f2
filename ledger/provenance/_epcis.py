"""EPCIS 2.0 JSON/JSON-LD documents: schema check, conversion to transactions, export.

`check_document` validates a document against GS1's JSON schema (shipped in
`ledger/schemas/epcis`, so it works offline from an installed wheel) and then every event against
our rules: the stateless ones (`check_event`) and the stateful ones, by applying the events in
order to a throwaway in-memory ledger as one importing member. Nothing is written anywhere.

JSON numbers that are not integers become decimal strings in transaction bodies (the canonical
encoding has no floats); export turns the numeric fields of EPCIS back into JSON numbers, so
import → export → import gives the same bodies.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Any

from ledger._codec import INT64_MAX, INT64_MIN, decode
from ledger.errors import DecodeError, ValidationError
from ledger.provenance import _keys as K
from ledger.provenance._rules import check_event
from ledger.provenance._vocab import EVENT_KINDS

SCHEMA_BASE = "https://gs1.github.io/EPCIS/JSON-Schema/"
ROOT_ID = SCHEMA_BASE + "EPCIS-JSON-Schema.json"
EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
NUMERIC_FIELDS = frozenset({"quantity", "value", "minValue", "maxValue", "meanValue", "sDev",
                            "percRank", "percValue"})
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024


def _schema_files() -> Iterator[tuple[str, Any]]:
    root = resources.files("ledger").joinpath("schemas", "epcis")
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            yield entry.name, json.loads(entry.read_text("utf-8"))
        elif entry.is_dir():
            for sub in sorted(entry.iterdir(), key=lambda e: e.name):
                if sub.name.endswith(".json"):
                    yield f"{entry.name}/{sub.name}", json.loads(sub.read_text("utf-8"))


@lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    resources_: list[tuple[str, Resource[Any]]] = []
    root_schema = None
    for rel, doc in _schema_files():
        res = Resource.from_contents(doc, default_specification=DRAFT7)
        resources_.append((SCHEMA_BASE + rel, res))
        if isinstance(doc, dict) and isinstance(doc.get("$id"), str):
            resources_.append((doc["$id"], res))
        if rel == "EPCIS-JSON-Schema-root.json":
            root_schema = doc
    if root_schema is None:  # pragma: no cover - packaging error
        raise ValidationError("the EPCIS JSON schema is missing from this installation",
                              code="no_schema")
    registry: Registry[Any] = Registry().with_resources(resources_)
    return jsonschema.Draft7Validator(root_schema, registry=registry)


# -- JSON <-> body --------------------------------------------------------------------------

def from_json(value: Any) -> Any:
    """A JSON value as a canonical-encodable one (floats and huge integers → decimal strings)."""
    if isinstance(value, dict):
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int) and not isinstance(value, bool) and not (
            INT64_MIN <= value <= INT64_MAX):
        return str(value)
    return value


def _number(s: str) -> Any:
    try:
        d = Decimal(s)
    except ArithmeticError:
        return s
    if "." in s or "e" in s.lower():
        return float(d)
    return int(d)


def to_json(value: Any, key: str | None = None) -> Any:
    """A body value as JSON: numeric EPCIS fields back to numbers, bytes to hex."""
    if isinstance(value, dict):
        return {k: to_json(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, str) and key in NUMERIC_FIELDS:
        return _number(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def event_list(doc: Any) -> list[Any]:
    """The events of an EPCISDocument, an EPCISQueryDocument, or a bare event.

    An event recorded on its own must still say what its extension prefixes (`ex:field`)
    mean, so the document's own prefix declarations (the maps in its `@context`) are copied
    into each event that has no `@context` of its own."""
    if not isinstance(doc, dict):
        return []
    if doc.get("type") in EVENT_KINDS:
        return [doc]
    body = doc.get("epcisBody")
    if not isinstance(body, dict):
        return []
    events: list[Any] = []
    if isinstance(body.get("eventList"), list):
        events = list(body["eventList"])
    else:
        qr = body.get("queryResults")
        if isinstance(qr, dict) and isinstance(qr.get("resultsBody"), dict):
            ev = qr["resultsBody"].get("eventList")
            if isinstance(ev, list):
                events = list(ev)
    ctx = doc.get("@context")
    maps = [c for c in (ctx if isinstance(ctx, list) else [ctx]) if isinstance(c, dict) and c]
    if maps:
        events = [{**e, "@context": maps} if isinstance(e, dict) and "@context" not in e
                  else e for e in events]
    return events


def event_to_tx(event: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(kind, body) of the transaction that records `event` (recordTime is the ledger's)."""
    body = from_json({k: v for k, v in event.items() if k != "recordTime"})
    kind = body.get("type")
    if kind not in EVENT_KINDS:
        raise ValidationError(f"type {kind!r} is not an EPCIS event type", code="unknown_kind")
    return str(kind), body


def load_document(data: bytes | str) -> Any:
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DecodeError(f"document larger than {MAX_DOCUMENT_BYTES} bytes", code="too_big")
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DecodeError(f"not a JSON document ({exc})", code="not_json") from exc


# -- check ------------------------------------------------------------------------------------

@dataclass
class EventReport:
    index: int
    event_id: str | None
    type: str | None
    ok: bool = True
    errors: list[dict[str, str]] = field(default_factory=list)


@dataclass
class CheckReport:
    ok: bool
    document_type: str | None
    events: list[EventReport]
    document_errors: list[dict[str, str]]

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "document_type": self.document_type,
                "events": len(self.events),
                "failed_events": [
                    {"index": e.index, "eventID": e.event_id, "type": e.type,
                     "errors": e.errors} for e in self.events if not e.ok],
                "document_errors": self.document_errors}


def _error_event_index(path: Sequence[Any]) -> int | None:
    p = list(path)
    for i in range(len(p) - 1):
        if p[i] == "eventList" and isinstance(p[i + 1], int):
            return int(p[i + 1])
    return None


def check_document(doc: Any, *, stateful: bool = True) -> CheckReport:
    """Validate an EPCIS document (schema, then our rules event by event); writes nothing."""
    validator = _validator()
    events = event_list(doc)
    reports = [EventReport(i, e.get("eventID") if isinstance(e, dict) else None,
                           e.get("type") if isinstance(e, dict) else None)
               for i, e in enumerate(events)]
    doc_errors: list[dict[str, str]] = []
    if not isinstance(doc, dict):
        doc_errors.append({"code": "schema", "message": "the document is not a JSON object"})
    else:
        for err in validator.iter_errors(doc):
            idx = _error_event_index(err.absolute_path)
            where = "/".join(str(p) for p in err.absolute_path) or "(document)"
            msg = {"code": "schema", "message": f"{where}: {err.message[:300]}"}
            if idx is not None and idx < len(reports):
                reports[idx].ok = False
                reports[idx].errors.append(msg)
            else:
                doc_errors.append(msg)
        if doc.get("type") not in ("EPCISDocument", "EPCISQueryDocument", *EVENT_KINDS):
            doc_errors.append({"code": "schema", "message": "type must be EPCISDocument, "
                               "EPCISQueryDocument or an event type"})
    bodies: list[tuple[int, str, dict[str, Any]]] = []
    for r, e in zip(reports, events, strict=True):
        try:
            if not isinstance(e, dict):
                raise ValidationError("an event must be a JSON object", code="bad_event")
            kind, body = event_to_tx(e)
            check_event(kind, body)
            bodies.append((r.index, kind, body))
        except (ValidationError, DecodeError) as exc:
            r.ok = False
            r.errors.append({"code": exc.code, "message": exc.message})
    if stateful and bodies:
        _stateful(reports, bodies)
    ok = not doc_errors and all(r.ok for r in reports)
    return CheckReport(ok=ok, document_type=doc.get("type") if isinstance(doc, dict) else None,
                       events=reports, document_errors=doc_errors)


def _stateful(reports: list[EventReport], bodies: list[tuple[int, str, dict[str, Any]]]) -> None:
    from ledger.provenance._memledger import MemLedger, make_genesis

    genesis, keys = make_genesis([("importer", ("validator", "member"))], seed=b"epcis-check")
    led = MemLedger(genesis, keys)
    for idx, kind, body in bodies:
        if not reports[idx].ok:
            continue
        res = led.submit("importer", kind, body)
        if not res.ok:
            reports[idx].ok = False
            reports[idx].errors.append({"code": res.code, "message": res.reason})


# -- export -----------------------------------------------------------------------------------

def _iso_ms(ms: int) -> str:
    from datetime import UTC, datetime

    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def export_events(reader: Any, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Every event in ledger order as EPCIS JSON (with recordTime = block time); an error
    declaration recorded later follows its event as the same event with `errorDeclaration`."""
    out: list[dict[str, Any]] = []
    for _, raw in reader.iter_prefix(b"es/"):
        eid = decode(raw)
        rec = decode(reader.get(K.event(eid)))
        ev = to_json(rec["b"])
        ev.setdefault("eventID", eid)
        ev.setdefault("type", rec["k"])
        ev["recordTime"] = _iso_ms(rec["t"])
        out.append(ev)
        if "errorDeclaration" not in rec["b"]:
            draw = reader.get(K.declaration(eid))
            if draw is not None:
                d = decode(draw)
                out.append({**ev, "errorDeclaration": to_json(d["d"]),
                            "recordTime": _iso_ms(d["t"])})
        if limit is not None and len(out) >= limit:
            break
    return out


def export_document(reader: Any, *, creation_ms: int) -> dict[str, Any]:
    """An EPCISDocument of every event on the ledger (validates against GS1's schema)."""
    return {"@context": [EPCIS_CONTEXT], "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": _iso_ms(creation_ms), "epcisBody": {"eventList":
                                                                export_events(reader)}}
