"""The integrator's and auditor's workflows, driven through the CLI as a user would: real node
processes (a devnet), subprocesses for every command, GS1's own example documents."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "tests" / "unit" / "provenance" / "data" / "epcis"
TRANSFORMATION = EXAMPLES / "Example_9.6.4-TransformationEvent.jsonld"
AGGREGATION = EXAMPLES / "Example_9.6.3-AggregationEvent.jsonld"


def cli(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=timeout, env=env)


def ok_json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any],
                                                                       dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("workflows")
    env = {**os.environ, "HOME": str(tmp / "home")}
    env.pop("PARTLEDGER_NODE", None)
    d = tmp / "dn"
    up = cli("devnet", "up", "--nodes", "4", "--dir", str(d), "--json", env=env)
    try:
        yield ok_json(up), env
    finally:
        cli("devnet", "down", "--dir", str(d), env=env)


def test_import_gs1_examples_then_query_export_and_reimport(
        devnet: tuple[dict[str, Any], dict[str, str]], tmp_path: Path) -> None:
    net, env = devnet
    n0, n2 = net["nodes"][0], net["nodes"][2]
    for example in (TRANSFORMATION, AGGREGATION):
        doc = ok_json(cli("epcis", "import", str(example), "--key", n0["org_key"], "--node",
                          n0["api"], "--json", env=env))
        assert doc["committed"] == doc["events"] >= 1 and doc["rejected"] == 0
        assert all(r["status"] == "committed" and r["height"] >= 1 for r in doc["results"])

    # the same events again: every one is a duplicate, reported with its reason, exit 1
    again = cli("epcis", "import", str(TRANSFORMATION), "--key", n0["org_key"], "--node",
                n2["api"], "--json", env=env)
    assert again.returncode == 1
    dup = json.loads(again.stdout)
    assert dup["committed"] == 0 and {r["code"] for r in dup["results"]} == {"duplicate_event"}

    # the transformation's input lot is traced forward to its outputs, from another node
    source = json.loads(TRANSFORMATION.read_text())["epcisBody"]["eventList"][0]
    some_input = (source.get("inputEPCList") or [q["epcClass"] for q in
                                                 source["inputQuantityList"]])[0]
    fwd = ok_json(cli("trace", "forward", some_input, "--node", n2["api"], "--json", env=env))
    reached = json.dumps(fwd)
    for out_id in source.get("outputEPCList", [])[:3]:
        assert out_id in reached

    # export through a node, the GS1 schema accepts it, and it holds every imported event
    out = tmp_path / "export.jsonld"
    exp = ok_json(cli("epcis", "export", "--node", n2["api"], "--out", str(out), "--json",
                      env=env))
    assert exp["events"] >= 2
    ok_json(cli("epcis", "check", str(out), "--json", env=env))
    exported_ids = {e.get("eventID") for e in json.loads(out.read_text())["epcisBody"]["eventList"]}
    assert source["eventID"] in exported_ids


def test_proof_through_node_verified_offline_and_tampered(
        devnet: tuple[dict[str, Any], dict[str, str]], tmp_path: Path) -> None:
    net, env = devnet
    n1 = net["nodes"][1]
    doc = ok_json(cli("epcis", "import", str(EXAMPLES / "AssociationEvent" /
                                              "AssociationEvent-a.jsonld"),
                      "--key", n1["org_key"], "--node", n1["api"], "--json", env=env))
    tx_id = doc["results"][0]["tx_id"]
    proof = tmp_path / "p.json"
    ok_json(cli("proof", "tx", tx_id, "--node", net["nodes"][3]["api"], "--out", str(proof),
                "--json", env=env))
    genesis = str(Path(n1["home"]) / "genesis.json")
    assert ok_json(cli("proof", "verify", str(proof), "--genesis", genesis, "--json",
                       env=env))["tx_id"] == tx_id
    bundle = json.loads(proof.read_text())
    sig_pos = bundle["seal"].rfind("a")  # a character inside the seal's signatures
    bundle["seal"] = bundle["seal"][:sig_pos] + "b" + bundle["seal"][sig_pos + 1:]
    proof.write_text(json.dumps(bundle))
    bad = cli("proof", "verify", str(proof), "--genesis", genesis, "--json", env=env)
    assert bad.returncode == 1 and json.loads(bad.stdout)["ok"] is False


def test_audit_replay_of_a_live_node_trusts_only_the_genesis(
        devnet: tuple[dict[str, Any], dict[str, str]], tmp_path: Path) -> None:
    net, env = devnet
    genesis = str(Path(net["nodes"][0]["home"]) / "genesis.json")
    live = ok_json(cli("audit", "replay", "--node", net["nodes"][1]["api"], "--genesis", genesis,
                       "--json", env=env))
    assert live["ok"] is True and live["height"] >= 1
    # the same blocks do not verify under another genesis (another chain id and validator set)
    other = tmp_path / "other-genesis.json"
    other.write_text(Path(genesis).read_text().replace('"chain_name": "', '"chain_name": "x'))
    wrong = cli("audit", "replay", "--node", net["nodes"][1]["api"], "--genesis", str(other),
                "--json", env=env)
    assert wrong.returncode == 1 and json.loads(wrong.stdout)["ok"] is False


def _commissioning(serial: str) -> dict[str, Any]:
    return {"type": "ObjectEvent", "eventTime": "2026-01-05T10:00:00.000Z",
            "eventTimeZoneOffset": "+00:00", "action": "ADD", "bizStep": "commissioning",
            "disposition": "active", "epcList": [f"urn:epc:id:sgtin:0614141.107346.{serial}"],
            "readPoint": {"id": "urn:epc:id:sgln:0614141.00777.0"}}


def test_tx_submit_batch_file(devnet: tuple[dict[str, Any], dict[str, str]],
                              tmp_path: Path) -> None:
    net, env = devnet
    n3 = net["nodes"][3]
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps([{"kind": "ObjectEvent", "body": _commissioning("T1")},
                                 {"kind": "ObjectEvent", "body": _commissioning("T2")}]))
    doc = ok_json(cli("tx", "submit", str(batch), "--key", n3["org_key"], "--node", n3["api"],
                      "--json", env=env))
    assert doc["ok"] and [r["status"] for r in doc["results"]] == ["committed", "committed"]
    shown = ok_json(cli("tx", "show", doc["results"][1]["tx_id"], "--node",
                        net["nodes"][0]["api"], "--json", env=env))
    assert shown["status"] == "committed"
    # commissioning T1 again is refused by the state machine, with its reason, exit 1
    single = tmp_path / "one.json"
    single.write_text(json.dumps(_commissioning("T1")))
    again = cli("tx", "submit", str(single), "--kind", "ObjectEvent", "--key", n3["org_key"],
                "--node", n3["api"], "--json", env=env)
    assert again.returncode == 1
    assert json.loads(again.stdout)["status"] == "rejected"


def test_member_helpers_passport_custody_notice_attest(
        devnet: tuple[dict[str, Any], dict[str, str]], tmp_path: Path) -> None:
    net, env = devnet
    maker, receiver = net["nodes"][0], net["nodes"][1]
    item = "urn:epc:id:sgtin:0614141.107346.HELPER1"
    ev = tmp_path / "ev.json"
    ev.write_text(json.dumps({**_commissioning("HELPER1")}))
    ok_json(cli("tx", "submit", str(ev), "--kind", "ObjectEvent", "--key", maker["org_key"],
                "--node", maker["api"], "--json", env=env))
    pp = tmp_path / "pp.json"
    pp.write_text(json.dumps({
        "passportId": "pp-helper-1", "subject": item, "level": "item", "profile": "espr-test",
        "attributes": [{"path": "manufacturer", "tier": "public", "value": maker["name"]},
                       {"path": "dismantling.torque", "tier": "legit_interest",
                        "value": "12 Nm", "entitled": [receiver["name"]]}]}))
    issued = ok_json(cli("passport", "issue", str(pp), "--key", maker["org_key"], "--node",
                         maker["api"], "--json", env=env))
    assert issued["status"] == "committed"
    public = ok_json(cli("passport", "show", item, "--node", receiver["api"], "--json", env=env))
    restricted = next(a for a in public["attributes"] if a["path"] == "dismantling.torque")
    assert "value" not in restricted and len(restricted["commitment"]) == 64
    entitled = ok_json(cli("passport", "show", item, "--node", receiver["api"], "--as",
                           receiver["name"], "--key", receiver["org_key"], "--json", env=env))
    opened = next(a for a in entitled["attributes"] if a["path"] == "dismantling.torque")
    assert opened["value"] == "12 Nm" and opened["verified"] is True

    prop = ok_json(cli("custody", "propose", item, "--to", receiver["name"], "--role", "both",
                       "--id", "ho-helper-1", "--key", maker["org_key"], "--node", maker["api"],
                       "--json", env=env))
    assert prop["status"] == "committed"
    # only the receiver may accept
    wrong = cli("custody", "accept", "ho-helper-1", "--key", net["nodes"][2]["org_key"],
                "--node", maker["api"], "--json", env=env)
    assert wrong.returncode == 1
    ok_json(cli("custody", "accept", "ho-helper-1", "--key", receiver["org_key"], "--node",
                receiver["api"], "--json", env=env))
    part = ok_json(cli("part", "show", item, "--node", maker["api"], "--json", env=env))
    assert receiver["name"] in json.dumps(part)

    recall = ok_json(cli("notice", "recall", item, "--key", maker["org_key"], "--node",
                         maker["api"], "--json", env=env))
    assert recall["status"] == "committed"
    # a member without the certifier role cannot attest
    att = cli("attest", item, "--standard", "ISO 9001", "--valid-from", "2026-01-01T00:00:00Z",
              "--valid-to", "2027-01-01T00:00:00Z", "--key", maker["org_key"], "--node",
              maker["api"], "--json", env=env)
    assert att.returncode == 1 and json.loads(att.stdout)["status"] == "rejected"
