"""EPCIS 2.0: GS1's examples pass `epcis check`; bad documents fail; import/export round trip."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli.main import app
from ledger.provenance import MemLedger, make_genesis
from ledger.provenance._epcis import (
    check_document,
    event_list,
    event_to_tx,
    export_document,
    load_document,
)

# GS1's example documents (gs1/EPCIS JSON/, copied from ../shared/conformance/epcis/JSON)
EXAMPLES_DIR = Path(__file__).resolve().parent / "data" / "epcis"
EXAMPLES = sorted(p for p in EXAMPLES_DIR.rglob("*.jsonld") if p.name != "EPCISQueryDocument.jsonld")


def test_examples_are_present() -> None:
    assert len(EXAMPLES) >= 40


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(EXAMPLES_DIR)))
def test_epcis_check_accepts_gs1_example(path: Path) -> None:
    res = CliRunner().invoke(app, ["epcis", "check", str(path), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["ok"] and out["events"] >= 1


def _doc(name: str) -> dict[str, Any]:
    d: dict[str, Any] = json.loads((EXAMPLES_DIR / name).read_text())
    return d


def test_epcis_check_reports_schema_error_by_event(tmp_path: Path) -> None:
    doc = _doc("Example_9.6.1-ObjectEvent.jsonld")
    bad = copy.deepcopy(doc)
    bad["epcisBody"]["eventList"][1]["action"] = "TELEPORT"
    f = tmp_path / "bad.jsonld"
    f.write_text(json.dumps(bad))
    res = CliRunner().invoke(app, ["epcis", "check", str(f), "--json"])
    assert res.exit_code == 1
    out = json.loads(res.output)
    assert [e["index"] for e in out["failed_events"]] == [1]
    codes = {e["code"] for e in out["failed_events"][0]["errors"]}
    assert "schema" in codes and "bad_action" in codes


def test_epcis_check_applies_ledger_rules_in_order() -> None:
    doc = _doc("Example_9.6.1-ObjectEvent.jsonld")
    ev = copy.deepcopy(doc["epcisBody"]["eventList"][0])
    ev2 = copy.deepcopy(ev)       # a duplicate eventID without an error declaration
    doc2 = {**doc, "epcisBody": {"eventList": [ev, ev2]}}
    rep = check_document(doc2)
    assert not rep.ok
    assert rep.events[0].ok and not rep.events[1].ok
    assert rep.events[1].errors[0]["code"] == "duplicate_event"
    # an ObjectEvent with ilmd but action OBSERVE
    ev3 = {**copy.deepcopy(ev), "eventID": "urn:uuid:x-1", "ilmd": {"ex:a": "1"}}
    rep = check_document({**doc, "epcisBody": {"eventList": [ev3]}})
    assert "ilmd_not_allowed" in {e["code"] for e in rep.events[0].errors}


def test_epcis_check_not_json(tmp_path: Path) -> None:
    f = tmp_path / "x.jsonld"
    f.write_text("{nope")
    res = CliRunner().invoke(app, ["epcis", "check", str(f)])
    assert res.exit_code == 1 and "not a JSON document" in res.output


def _import(led: MemLedger, doc: Any) -> None:
    txs = [led.sign("importer", *event_to_tx(e)) for e in event_list(doc)]
    ex = led.commit(txs)
    assert ex.all_ok, [r for r in ex.results if not r.ok][:2]


def test_import_export_import_gives_the_same_events() -> None:
    events: list[Any] = []
    for p in EXAMPLES:
        events += event_list(load_document(p.read_bytes()))
    # keep one copy of each eventID (examples reuse IDs across files)
    seen: set[str] = set()
    uniq = []
    for e in events:
        eid = e.get("eventID")
        if eid in seen:
            continue
        if eid:
            seen.add(eid)
        uniq.append(e)
    g, keys = make_genesis([("importer", ("validator", "member"))], seed=b"rt")
    doc = {"@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
           "type": "EPCISDocument", "schemaVersion": "2.0",
           "creationDate": "2025-01-01T00:00:00Z", "epcisBody": {"eventList": uniq}}
    rep = check_document(doc)
    ok_events = [e for e, r in zip(uniq, rep.events, strict=True) if r.ok]
    assert len(ok_events) >= 40
    doc["epcisBody"]["eventList"] = ok_events
    a = MemLedger(g, keys)
    _import(a, doc)
    exported = export_document(a.state, creation_ms=0)
    assert check_document(exported, stateful=False).ok      # GS1 schema valid
    b = MemLedger(g, keys)
    _import(b, json.loads(json.dumps(exported)))
    again = export_document(b.state, creation_ms=0)

    def strip(d: dict[str, Any]) -> list[Any]:
        return [{k: v for k, v in e.items() if k != "recordTime"}
                for e in d["epcisBody"]["eventList"]]
    assert strip(exported) == strip(again)
    assert len(strip(exported)) >= len(ok_events)


def test_document_prefixes_travel_with_each_event() -> None:
    doc = _doc("Example_9.6.1-ObjectEvent.jsonld")
    evs = event_list(doc)
    assert all(e["@context"] == [{"example": "http://ns.example.com/epcis/"}] for e in evs)
    g, keys = make_genesis([("importer", ("validator", "member"))], seed=b"ctx")
    led = MemLedger(g, keys)
    _import(led, doc)
    out = export_document(led.state, creation_ms=0)
    assert all("@context" in e for e in out["epcisBody"]["eventList"])
