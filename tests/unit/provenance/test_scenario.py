"""The e-bike scenario through `dev generate --scenario ebike`, queried from Python and CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli.cmd_query import open_reader
from cli.main import app
from ledger.provenance import _query as Q
from ledger.provenance import _scenario as S


@pytest.fixture(scope="module")
def ebike(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("ebike") / "home"
    res = CliRunner().invoke(app, ["dev", "generate", "--scenario", "ebike", "--out", str(home),
                                   "--json"])
    assert res.exit_code == 0, res.output
    out: dict[str, Any] = json.loads(res.output)
    out["home_path"] = home
    return out


@pytest.fixture(scope="module")
def reader(ebike: dict[str, Any]) -> Any:
    """A snapshot of the store's state (so CLI calls can open the store meanwhile)."""
    from ledger._memstate import MemState

    with open_reader(ebike["home_path"]) as r:
        return MemState(dict(r.iter_prefix(b"")))


def cli(*args: str) -> Any:
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def test_generate_prints_key_objects(ebike: dict[str, Any]) -> None:
    x = S.ids()
    assert ebike["ebikes"] == x.ebikes and len(ebike["ebikes"]) == 4
    assert ebike["defective_cell_lot"] == x.defective_cell_lot
    assert ebike["recycled_aluminium_lot"] == x.recycled_lot
    assert ebike["new_frame"] == x.new_frame
    assert ebike["txs"] == len(S.steps())


def test_recall_finds_exactly_the_ebikes_with_defective_cells(ebike: dict[str, Any],
                                                              reader: Any) -> None:
    d = Q.recall(reader, [ebike["defective_cell_lot"]])
    assert sorted(i["id"] for i in d["endItems"]) == sorted(ebike["affected_ebikes"])
    holders = {i["id"]: i["lastPossessingParty"] for i in d["endItems"]}
    assert holders == {ebike["ebikes"][1]: ["city-fleet"], ebike["ebikes"][3]: ["ebike-co"]}
    assert d["holders"] == ["city-fleet", "ebike-co"]
    affected = {i["id"] for i in d["affected"]}
    assert ebike["ebikes"][0] not in affected and ebike["ebikes"][2] not in affected
    assert {"id": ebike["ebikes"][3], "type": "po",
            "bizTransaction": "urn:epcglobal:cbv:bt:4000004000009:PO-778"} in \
        d["openTransactions"]
    assert cli("recall", ebike["defective_cell_lot"], "--home", str(ebike["home_path"])) == d


def test_recall_by_digital_link_of_a_pack(ebike: dict[str, Any], reader: Any) -> None:
    from ledger.provenance._ids import id_key, to_digital_link

    dl = to_digital_link(id_key(S.ids().packs[3]))
    assert dl is not None
    d = Q.recall(reader, [dl])
    assert [i["id"] for i in d["endItems"]] == [ebike["ebikes"][3]]


def test_trace_back_of_new_frame_shows_the_loop(ebike: dict[str, Any], reader: Any) -> None:
    x = S.ids()
    d = Q.trace_back(reader, ebike["new_frame"])
    ids = [n["id"] for n in d["nodes"]]
    # new frame ← tubes ← recycled lot ← old frame (from the e-bike) ← tubes ← alloy ← raw
    for ident in (x.tube_lot_2, x.recycled_lot, x.frames[0], x.tube_lot, x.alu_lot):
        assert ident in ids
    assert sorted(d["rawMaterials"]) == sorted([x.scrap_lot, x.primary_lot])
    rels = {(e["from"], e["to"]) for e in d["edges"]}
    assert (x.recycled_lot, x.frames[0]) in rels
    old_frame = next(n for n in d["nodes"] if n["id"] == x.frames[0])
    assert any(e["bizStep"] == "disassembling" for e in old_frame["events"])


def test_trace_back_of_ebike_reaches_cells_with_attestations(ebike: dict[str, Any],
                                                              reader: Any) -> None:
    x = S.ids()
    d = Q.trace_back(reader, ebike["ebikes"][1])
    nodes = {n["id"]: n for n in d["nodes"]}
    assert {x.frames[1], x.packs[1], x.motors[1], x.cell_lots[0], x.cell_lots[1]} <= set(nodes)
    assert x.cell_lots[2] not in nodes
    assert nodes[x.cell_lots[1]]["attestations"][0]["standard"].startswith("UN 38.3")
    assert x.scrap_lot in d["rawMaterials"]


def test_trace_forward_of_alloy_lot(ebike: dict[str, Any], reader: Any) -> None:
    x = S.ids()
    d = Q.trace_forward(reader, x.alu_lot)
    ends = {i["id"] for i in d["endItems"]}
    # bikes 2-4 still contain their frames; bike 1's frame went into the new frame
    assert set(ebike["ebikes"][1:]) <= ends and x.new_frame in ends


def test_part_show_and_bom(ebike: dict[str, Any], reader: Any) -> None:
    x = S.ids()
    p = Q.part_show(reader, x.packs[0])
    assert (p["owner"], p["custodian"], p["installedIn"]) == ("circular-alu", "circular-alu",
                                                              None)
    assert p["passport"] == "bp-pack-1-sl"
    b1 = Q.part_show(reader, ebike["ebikes"][0])
    assert b1["status"] == "decommissioned"
    bom = Q.bom(reader, ebike["ebikes"][1])
    comps = {c["id"]: c for c in bom["components"]}
    assert set(comps) == {x.frames[1], x.packs[1], x.motors[1]}
    assert all(c["current"] for c in comps.values())
    assert {m["id"] for m in comps[x.packs[1]]["materials"]} == {x.cell_lots[0],
                                                                 x.cell_lots[1]}
    old = Q.bom(reader, ebike["ebikes"][0])
    assert old["components"] and not any(c["current"] for c in old["components"])


def test_passport_tiers_and_lineage(ebike: dict[str, Any], reader: Any) -> None:
    from ledger._keyfile import read_key_file

    home = ebike["home_path"]
    public = Q.passport_show(reader, ebike["ebikes"][1])
    restricted = [a for a in public["attributes"] if a["tier"] != "public"]
    assert restricted and all("value" not in a for a in restricted)
    other = Q.passport_show(reader, "pp-ebike-2", as_org="volt-cells")
    assert all(not a.get("entitled") for a in other["attributes"] if a["tier"] != "public")
    key = read_key_file(home / "consortium" / "circular-alu" / "org.key")
    mine = Q.passport_show(reader, "pp-ebike-2", as_org="circular-alu", key=key)
    sealed = next(a for a in mine["attributes"] if a["path"] == "dismantling.instructions")
    assert sealed["verified"] and sealed["value"]["uri"].startswith("https://")
    ended = Q.passport_show(reader, "pp-ebike-1")
    assert ended["status"] == "ended" and [h["status"] for h in ended["history"]] == [
        "original", "waste", "ended"]
    sl = Q.passport_show(reader, "bp-pack-1-sl")
    assert sl["predecessors"] == ["bp-pack-1"] and sl["status"] == "repurposed"
    assert Q.passport_show(reader, "bp-pack-1")["successors"] == ["bp-pack-1-sl"]
    via_cli = cli("passport", "show", "pp-ebike-2", "--home", str(home), "--as",
                  "circular-alu", "--key", str(home / "consortium" / "circular-alu" / "org.key"))
    assert via_cli == mine


def test_events_filters_and_error_declaration(ebike: dict[str, Any], reader: Any) -> None:
    bike3 = ebike["ebikes"][2]
    evs = Q.events(reader, match_any_epc=[bike3])
    assert [e["bizStep"] for e in evs] == ["commissioning", "assembling", "inspecting",
                                           "inspecting"]
    assert "errorDeclaration" in evs[2] and "errorDeclaration" not in evs[3]
    insp = Q.events(reader, eq_biz_step=["inspecting"])
    assert len(insp) == 2
    loc = "urn:epc:id:sgln:4000001.00003.0"
    at_recycler = Q.events(reader, eq_biz_location=[loc])
    assert at_recycler and all(e["bizLocation"] == loc for e in at_recycler)
    early = Q.events(reader, lt_event_time="2025-03-04T00:00:00Z")
    late = Q.events(reader, ge_event_time="2025-03-04T00:00:00Z")
    assert len(early) + len(late) == len(Q.events(reader))
    assert cli("events", "--home", str(ebike["home_path"]), "--MATCH_anyEPC", bike3) == evs


def test_trace_svg_and_text(ebike: dict[str, Any], tmp_path: Path) -> None:
    home = str(ebike["home_path"])
    res = CliRunner().invoke(app, ["trace", "back", ebike["new_frame"], "--home", home])
    assert res.exit_code == 0 and "raw materials" in res.output
    if shutil.which("dot") is None:
        res = CliRunner().invoke(app, ["trace", "back", ebike["new_frame"], "--home", home,
                                       "--svg", str(tmp_path / "g.svg")])
        assert res.exit_code != 0
        return
    d = cli("trace", "forward", ebike["defective_cell_lot"], "--home", home, "--svg",
            str(tmp_path / "g.svg"))
    assert (tmp_path / "g.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    assert d["svg"].endswith("g.svg")


def test_unknown_identifier_is_a_clean_error(ebike: dict[str, Any],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["part", "show", "urn:epc:id:sgtin:9999999.000001.1", "--home",
              str(ebike["home_path"]), "--json"])
    assert exc.value.code == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["code"] == "not_found"
    assert "not on the ledger" in err and "Traceback" not in err


def test_export_then_check(ebike: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "all.jsonld"
    d = cli("epcis", "export", "--home", str(ebike["home_path"]), "--out", str(out))
    assert d["events"] >= 30
    assert cli("epcis", "check", str(out))["ok"]


def test_import_into_dev_chain(ebike: dict[str, Any], tmp_path: Path) -> None:
    home = tmp_path / "copy"
    shutil.copytree(ebike["home_path"], home)
    doc = Path(__file__).parent / "data" / "epcis" / "Example_9.6.1-ObjectEvent.jsonld"
    key = home / "consortium" / "frame-works" / "org.key"
    d = cli("epcis", "import", str(doc), "--key", str(key), "--home", str(home))
    assert d["events"] == 2 and d["height"] == ebike["height"] + 1
    evs = cli("events", "--home", str(home), "--MATCH_anyEPC",
              "https://id.gs1.org/01/10614141073464/21/2017")
    assert evs and evs[0]["recordedBy"] == "frame-works"
    # the same document again: duplicate eventIDs, nothing written
    res = CliRunner().invoke(app, ["epcis", "import", str(doc), "--key", str(key), "--home",
                                   str(home), "--json"])
    assert res.exit_code == 1


def test_recall_follows_a_part_after_disassembly(ebike: dict[str, Any], reader: Any) -> None:
    x = S.ids()
    # the pack of e-bike 1 was removed at end of life: recalling its cell lot A does not name
    # the decommissioned bike, but still names bikes 2 (pack 2 has cells of A)
    d = Q.recall(reader, [x.cell_lots[0]])
    ends = {i["id"] for i in d["endItems"]}
    assert ebike["ebikes"][0] not in ends
    assert x.packs[0] in ends and ebike["ebikes"][1] in ends
    # the frame remelted into the recycled lot carries on into the new frame
    d = Q.recall(reader, [x.frames[0]])
    assert {i["id"] for i in d["endItems"]} == {x.new_frame}


def test_passport_verify_a_disclosed_value(ebike: dict[str, Any]) -> None:
    home = ebike["home_path"]
    shown = cli("passport", "show", "pp-ebike-3", "--home", str(home), "--as", "circular-alu",
                "--key", str(home / "consortium" / "circular-alu" / "org.key"))
    item = next(a for a in shown["attributes"] if a["path"] == "dismantling.instructions")
    args = ["passport", "verify", "pp-ebike-3", "dismantling.instructions", "--home",
            str(home), "--salt", item["salt"]]
    good = cli(*args, "--value", json.dumps(item["value"]))
    assert good["ok"]
    forged = {**item["value"], "uri": "https://evil.example.com/"}
    res = CliRunner().invoke(app, [*args, "--value", json.dumps(forged), "--json"])
    assert res.exit_code == 1 and json.loads(res.output)["ok"] is False
