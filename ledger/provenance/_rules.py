"""Stateless rules of EPCIS 2.0 events, shared by the state machine and `epcis check`.

`check_event(kind, body)` raises `ValidationError` (code + a sentence naming the field and the
rule) or returns an `EventView`: the identifiers of the event sorted into the roles the state
machine and the genealogy index need. It never reads state, so `epcis check` can run it on a
document without a ledger.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.errors import ValidationError
from ledger.provenance._vocab import (
    ACTIONS,
    BIZ_STEPS,
    BIZ_TRANSACTION_TYPES,
    DISPOSITIONS,
    ERROR_REASONS,
    SOURCE_DEST_TYPES,
    vocab_ok,
)

TZ_RE = re.compile(r"^[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00)$")
DECIMAL_RE = re.compile(r"^-?(0|[1-9][0-9]{0,30})(\.[0-9]{1,18})?$")
MAX_IDS = 10_000
MAX_ID_LEN = 512

_COMMON = frozenset({
    "type", "eventID", "eventTime", "eventTimeZoneOffset", "recordTime", "certificationInfo",
    "errorDeclaration", "@context", "readPoint", "bizLocation", "bizStep", "disposition",
    "persistentDisposition", "bizTransactionList", "sourceList", "destinationList",
    "sensorElementList",
})
_FIELDS: dict[str, frozenset[str]] = {
    "ObjectEvent": _COMMON | {"action", "epcList", "quantityList", "ilmd"},
    "AggregationEvent": _COMMON | {"action", "parentID", "childEPCs", "childQuantityList"},
    "AssociationEvent": _COMMON | {"action", "parentID", "childEPCs", "childQuantityList"},
    "TransformationEvent": _COMMON | {"inputEPCList", "inputQuantityList", "outputEPCList",
                                      "outputQuantityList", "transformationID", "ilmd"},
    "TransactionEvent": _COMMON | {"action", "parentID", "epcList", "quantityList"},
}


def reject(code: str, reason: str) -> ValidationError:
    return ValidationError(reason, code=code)


@dataclass(slots=True)
class EventView:
    """The identifiers of one event by role (URIs as written in the event)."""

    kind: str
    action: str | None
    epcs: list[str]          # epcList (Object/Transaction)
    classes: list[str]       # quantityList epcClass
    parent: str | None
    children: list[str]      # childEPCs
    child_classes: list[str]
    inputs: list[str]
    input_classes: list[str]
    outputs: list[str]
    output_classes: list[str]
    time_ms: int
    biz_step: str | None
    disposition: str | None
    biz_location: str | None
    read_point: str | None


def parse_time_ms(value: Any, field: str) -> int:
    if not isinstance(value, str) or len(value) > 64:
        raise reject("bad_time", f"{field} must be an ISO 8601 date-time string")
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise reject("bad_time", f"{field} {value!r} is not an ISO 8601 date-time") from None
    if dt.tzinfo is None:
        raise reject("bad_time", f"{field} {value!r} has no time zone offset (add Z or +hh:mm)")
    return int(dt.timestamp() * 1000)


def _id(v: Any, field: str) -> str:
    if not isinstance(v, str) or not 0 < len(v) <= MAX_ID_LEN or ":" not in v:
        raise reject("bad_identifier", f"{field} must be a URI (an EPC URN or a GS1 Digital "
                     f"Link), got {str(v)[:80]!r}")
    return v


def _id_list(body: dict[str, Any], field: str) -> list[str]:
    v = body.get(field)
    if v is None:
        return []
    if not isinstance(v, list) or len(v) > MAX_IDS:
        raise reject("bad_field", f"{field} must be a list of at most {MAX_IDS} identifiers")
    for x in v:
        if not isinstance(x, str) or not 0 < len(x) <= MAX_ID_LEN or ":" not in x:
            out = [_id(x, f"{field}[{i}]") for i, x in enumerate(v)]  # names the first bad one
            break
    else:
        out = list(v)
    if len(set(out)) != len(out):
        raise reject("duplicate_identifier", f"{field} lists an identifier twice")
    return out


def _quantity(v: Any, field: str) -> None:
    if isinstance(v, bool):
        raise reject("bad_quantity", f"{field} must be a number")
    if isinstance(v, int):
        if v < 0:
            raise reject("bad_quantity", f"{field} must not be negative")
        return
    if not isinstance(v, str) or not DECIMAL_RE.match(v) or v.startswith("-"):
        raise reject("bad_quantity", f"{field} must be a non-negative integer or decimal "
                     f"string such as '12.5' (floats are not allowed), got {v!r}")


def _qty_list(body: dict[str, Any], field: str) -> list[str]:
    v = body.get(field)
    if v is None:
        return []
    if not isinstance(v, list) or len(v) > MAX_IDS:
        raise reject("bad_field", f"{field} must be a list of quantity elements")
    out = []
    for i, q in enumerate(v):
        if not isinstance(q, dict) or "epcClass" not in q:
            raise reject("bad_field", f"{field}[{i}] must be a map with an epcClass")
        c = q["epcClass"]
        if not isinstance(c, str) or not 0 < len(c) <= MAX_ID_LEN or ":" not in c:
            _id(c, f"{field}[{i}].epcClass")
        out.append(c)
        if "quantity" in q:
            n = q["quantity"]
            if type(n) is not int or n < 0:
                _quantity(n, f"{field}[{i}].quantity")
        if "uom" in q and ("quantity" not in q or not isinstance(q["uom"], str)):
            raise reject("bad_field", f"{field}[{i}].uom needs a quantity and must be a UN/ECE "
                         "Rec 20 code string")
    return out


def _loc(body: dict[str, Any], field: str) -> str | None:
    v = body.get(field)
    if v is None:
        return None
    if not isinstance(v, dict) or "id" not in v:
        raise reject("bad_field", f"{field} must be a map with an id")
    i = v["id"]
    if not isinstance(i, str) or not 0 < len(i) <= MAX_ID_LEN or ":" not in i:
        _id(i, f"{field}.id")
    return i  # type: ignore[no-any-return]


def check_event(kind: str, body: dict[str, Any]) -> EventView:
    """Validate one EPCIS event body (stateless rules of EPCIS 2.0 and CBV 2.0).

    Raises:
        ValidationError: with a code and a sentence naming the field and the rule.
    """
    allowed = _FIELDS.get(kind)
    if allowed is None:
        raise reject("unknown_kind", f"kind {kind!r} is not an EPCIS event type")
    t = body.get("type", kind)
    if t != kind:
        raise reject("type_mismatch", f"type {t!r} does not match the transaction kind {kind!r}")
    if kind == "TransformationEvent" and "action" in body:
        raise reject("action_not_allowed", "TransformationEvent has no action field")
    for f in body:
        if f not in allowed and ":" not in f:
            raise reject("unknown_field", f"{kind} has no field {f!r} (extension fields need "
                         "a namespace prefix such as 'ex:')")
    eid = body.get("eventID")
    if eid is not None:
        _id(eid, "eventID")
    if "eventTime" not in body:
        raise reject("missing_field", f"{kind}.eventTime is required")
    time_ms = parse_time_ms(body["eventTime"], "eventTime")
    tz = body.get("eventTimeZoneOffset")
    if not isinstance(tz, str) or not TZ_RE.match(tz):
        raise reject("bad_time", "eventTimeZoneOffset is required and must look like +01:00 "
                     "(from -14:00 to +14:00)")
    action = body.get("action")
    if kind == "TransformationEvent":
        if action is not None:
            raise reject("action_not_allowed", "TransformationEvent has no action field")
    elif action not in ACTIONS:
        raise reject("bad_action", f"{kind}.action must be ADD, OBSERVE or DELETE")
    if "ilmd" in body:
        if not (kind == "TransformationEvent" or (kind == "ObjectEvent" and action == "ADD")):
            raise reject("ilmd_not_allowed", "ilmd is only allowed on an ObjectEvent with "
                         "action ADD or on a TransformationEvent")
        if not isinstance(body["ilmd"], dict):
            raise reject("bad_field", "ilmd must be a map")
    biz_step = body.get("bizStep")
    if biz_step is not None and not vocab_ok(biz_step, BIZ_STEPS):
        raise reject("bad_vocabulary", f"bizStep {biz_step!r} is neither a CBV 2.0 business "
                     "step nor a private URI")
    disp = body.get("disposition")
    if disp is not None and not vocab_ok(disp, DISPOSITIONS):
        raise reject("bad_vocabulary", f"disposition {disp!r} is neither a CBV 2.0 disposition "
                     "nor a private URI")
    pd = body.get("persistentDisposition")
    if pd is not None:
        if not isinstance(pd, dict) or not set(pd) <= {"set", "unset"} or not pd:
            raise reject("bad_field", "persistentDisposition must be a map with set and/or unset")
        for k, vals in pd.items():
            if not isinstance(vals, list) or not all(vocab_ok(x, DISPOSITIONS) for x in vals):
                raise reject("bad_vocabulary", f"persistentDisposition.{k} must list "
                             "dispositions")
    for i, bt in enumerate(body.get("bizTransactionList") or ()):
        if not isinstance(bt, dict) or not isinstance(bt.get("bizTransaction"), str):
            raise reject("bad_field", f"bizTransactionList[{i}] needs a bizTransaction URI")
        if "type" in bt and not vocab_ok(bt["type"], BIZ_TRANSACTION_TYPES):
            raise reject("bad_vocabulary", f"bizTransactionList[{i}].type {bt['type']!r} is "
                         "not a CBV business transaction type")
    for field, sub in (("sourceList", "source"), ("destinationList", "destination")):
        for i, s in enumerate(body.get(field) or ()):
            if not isinstance(s, dict) or not isinstance(s.get(sub), str):
                raise reject("bad_field", f"{field}[{i}] needs a {sub} identifier")
            if not vocab_ok(s.get("type"), SOURCE_DEST_TYPES):
                raise reject("bad_vocabulary", f"{field}[{i}].type must be owning_party, "
                             "possessing_party or location")
    ed = body.get("errorDeclaration")
    if ed is not None:
        if not isinstance(ed, dict) or "declarationTime" not in ed:
            raise reject("bad_field", "errorDeclaration.declarationTime is required")
        parse_time_ms(ed["declarationTime"], "errorDeclaration.declarationTime")
        if "reason" in ed and not vocab_ok(ed["reason"], ERROR_REASONS):
            raise reject("bad_vocabulary", "errorDeclaration.reason must be did_not_occur, "
                         "incorrect_data or a private URI")
        ce = ed.get("correctiveEventIDs", [])
        if not isinstance(ce, list) or not all(isinstance(x, str) for x in ce):
            raise reject("bad_field", "errorDeclaration.correctiveEventIDs must list event IDs")
    sensors = body.get("sensorElementList")
    if sensors is not None and not isinstance(sensors, list):
        raise reject("bad_field", "sensorElementList must be a list")
    cert = body.get("certificationInfo")
    if cert is not None and not (isinstance(cert, str) or (
            isinstance(cert, list) and all(isinstance(c, str) for c in cert))):
        raise reject("bad_field", "certificationInfo must be a URI or a list of URIs")

    parent = body.get("parentID")
    if parent is not None:
        _id(parent, "parentID")
    view = EventView(kind=kind, action=action, epcs=[], classes=[], parent=parent, children=[],
                     child_classes=[], inputs=[], input_classes=[], outputs=[],
                     output_classes=[], time_ms=time_ms, biz_step=biz_step, disposition=disp,
                     biz_location=_loc(body, "bizLocation"), read_point=_loc(body, "readPoint"))
    if kind in ("ObjectEvent", "TransactionEvent"):
        view.epcs = _id_list(body, "epcList")
        view.classes = _qty_list(body, "quantityList")
        if kind == "ObjectEvent" and "epcList" not in body and "quantityList" not in body and not (
                sensors and view.read_point):
            raise reject("missing_field", "ObjectEvent needs epcList or quantityList (or "
                         "sensorElementList with readPoint)")
        if kind == "TransactionEvent" and not body.get("bizTransactionList"):
            raise reject("missing_field", "TransactionEvent needs a non-empty "
                         "bizTransactionList")
    elif kind in ("AggregationEvent", "AssociationEvent"):
        view.children = _id_list(body, "childEPCs")
        view.child_classes = _qty_list(body, "childQuantityList")
        if kind == "AssociationEvent" and parent is None:
            raise reject("missing_field", "AssociationEvent needs a parentID")
        if kind == "AggregationEvent" and parent is None and action != "OBSERVE":
            raise reject("missing_field", f"AggregationEvent with action {action} needs a "
                         "parentID")
        if ("childEPCs" not in body and "childQuantityList" not in body
                and action != "DELETE"):
            raise reject("missing_field", f"{kind} with action {action} needs childEPCs or "
                         "childQuantityList")
        if parent is not None and parent in view.children:
            raise reject("self_containment", "parentID also appears in childEPCs")
    else:
        view.inputs = _id_list(body, "inputEPCList")
        view.input_classes = _qty_list(body, "inputQuantityList")
        view.outputs = _id_list(body, "outputEPCList")
        view.output_classes = _qty_list(body, "outputQuantityList")
        tid = body.get("transformationID")
        if tid is not None:
            _id(tid, "transformationID")
        has_in = bool(view.inputs or view.input_classes)
        has_out = bool(view.outputs or view.output_classes)
        if tid is None and not (has_in and has_out):
            raise reject("missing_field", "TransformationEvent needs inputs and outputs, or a "
                         "transformationID")
        if set(view.inputs) & set(view.outputs):
            raise reject("self_derivation", "an identifier is both input and output of one "
                         "TransformationEvent")
    return view
