"""The provenance state machine: acceptance, each rejection rule, permission per kind."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ledger import BlockContext, Transaction, decode
from ledger._crypto import SigningKey
from ledger.provenance import MemLedger, ProvenanceApp, id_key, open_attribute, seal_attribute
from ledger.provenance import _keys as K
from ledger.provenance._passport import verify_disclosure
from tests.unit.provenance.conftest import LOT, OTHER, SER, ok, rejected

Ev = Callable[..., dict[str, Any]]


def commission(led: MemLedger, ev: Ev, who: str, *epcs: str, **kw: Any) -> dict[str, Any]:
    body = ev("ObjectEvent", action="ADD", bizStep="commissioning", epcList=list(epcs), **kw)
    ok(led.submit(who, "ObjectEvent", body))
    return body


def lot(led: MemLedger, ev: Ev, who: str, cls: str, q: str = "100") -> None:
    ok(led.submit(who, "ObjectEvent", ev("ObjectEvent", action="ADD", bizStep="commissioning",
                                         quantityList=[{"epcClass": cls, "quantity": q,
                                                        "uom": "KGM"}])))


def obj(led: MemLedger, uri: str) -> dict[str, Any]:
    raw = led.state.get(K.obj(id_key(uri)))
    assert raw is not None
    out: dict[str, Any] = decode(raw)
    return out


def edges(led: MemLedger, uri: str, rel: str) -> dict[str, Any]:
    """other end (or eventID) -> payload of `uri`'s genealogy edges of relation `rel`."""
    key = id_key(uri)
    out = {other: p for r, other, p in obj(led, uri).get("g", ()) if r == rel}
    grp = b"gu/" if rel in ("df", "cp", "co") else b"gd/"
    for k, v in led.state.iter_prefix(K.node_prefix(grp, key)):
        r, other = K.split_edge(k)
        if r.decode() == rel:
            out[other] = decode(v)
    return out


def get(led: MemLedger, key: bytes) -> Any:
    raw = led.state.get(key)
    return None if raw is None else decode(raw)


# -- envelope: signer, nonce, chain, kind ------------------------------------------------------

def test_ProvenanceApp_genesis_members_become_orgs_and_agents(led: MemLedger) -> None:
    org = get(led, K.org("cert"))
    assert org["roles"] == ["certifier"] and org["active"]
    assert get(led, K.agent(led.keys["cert"].public)) == {"org": "cert", "active": True}


def test_ProvenanceApp_nonce_must_be_next(led: MemLedger, ev: Ev) -> None:
    key = led.keys["maker"]
    body = ev("ObjectEvent", action="ADD", epcList=[SER + "1"])
    tx = Transaction.create(key, chain=led.genesis.chain_id, kind="ObjectEvent", body=body,
                            nonce=1)
    rejected(led.commit([tx]).results[0], "bad_nonce")
    tx0 = Transaction.create(key, chain=led.genesis.chain_id, kind="ObjectEvent", body=body,
                             nonce=0)
    ok(led.commit([tx0]).results[0])
    # replay of the same transaction
    rejected(led.commit([tx0]).results[0], "bad_nonce")


def test_ProvenanceApp_unknown_signer_wrong_chain_unknown_kind(led: MemLedger, ev: Ev) -> None:
    stranger = SigningKey(b"\x07" * 32)
    tx = Transaction.create(stranger, chain=led.genesis.chain_id, kind="ObjectEvent",
                            body=ev("ObjectEvent", action="OBSERVE", epcList=[SER + "1"]),
                            nonce=0)
    rejected(led.commit([tx]).results[0], "unknown_signer")
    tx = Transaction.create(led.keys["maker"], chain=b"\x01" * 32, kind="ObjectEvent",
                            body=ev("ObjectEvent", action="OBSERVE", epcList=[SER + "1"]),
                            nonce=0)
    rejected(led.commit([tx]).results[0], "wrong_chain")
    rejected(led.submit("maker", "Teleport", {}), "unknown_kind")


def test_ProvenanceApp_rejected_tx_writes_nothing_and_later_txs_see_earlier(
        led: MemLedger, ev: Ev) -> None:
    before = led.state.items()
    bad = led.sign("maker", "ObjectEvent", ev("ObjectEvent", action="ADD", epcList=["nope"]))
    ex = led.execute([bad])
    assert not ex.results[0].ok and ex.writes == {}
    led.nonces[led.keys["maker"].public] = 0
    a = led.sign("maker", "ObjectEvent", ev("ObjectEvent", action="ADD", epcList=[SER + "9"]))
    b = led.sign("maker", "ObjectEvent", ev("ObjectEvent", action="OBSERVE",
                                            epcList=[SER + "9"], disposition="damaged"))
    ex = led.commit([a, b])
    assert ex.all_ok
    assert obj(led, SER + "9")["disp"] == "damaged"
    assert len(led.state.items()) > len(before)


def test_ProvenanceApp_malformed_body_is_rejected_not_raised(led: MemLedger) -> None:
    rejected(led.submit("maker", "CustodyPropose", {"proposalId": 5}), "bad_field")
    res = led.submit("maker", "TransactionEvent", {
        "eventTime": "2025-01-01T00:00:00Z", "eventTimeZoneOffset": "+00:00", "action": "ADD",
        "epcList": [SER + "1"], "bizTransactionList": [7]})
    rejected(res, "bad_field")


# -- EPCIS events: acceptance and invariants ---------------------------------------------------

def test_ObjectEvent_commission_observe_decommission(led: MemLedger, ev: Ev) -> None:
    commission(led, ev, "maker", SER + "1", bizLocation={"id": "urn:epc:id:sgln:4012345.00001.0"})
    o = obj(led, SER + "1")
    assert (o["s"], o["own"], o["cus"], o["by"]) == ("active", "maker", "maker", "maker")
    ok(led.submit("maker", "ObjectEvent", ev("ObjectEvent", action="OBSERVE",
                                             epcList=[SER + "1"], disposition="conformant",
                                             persistentDisposition={"set": ["completeness_verified"]})))
    assert obj(led, SER + "1")["pd"] == ["completeness_verified"]
    ok(led.submit("maker", "ObjectEvent", ev("ObjectEvent", action="DELETE",
                                             bizStep="decommissioning", epcList=[SER + "1"])))
    assert obj(led, SER + "1")["s"] == "decommissioned"
    rejected(led.submit("maker", "ObjectEvent", ev("ObjectEvent", action="OBSERVE",
                                                   epcList=[SER + "1"])), "inactive_identifier")


def test_ObjectEvent_destroyed_is_terminal(led: MemLedger, ev: Ev) -> None:
    commission(led, ev, "maker", SER + "2")
    ok(led.submit("maker", "ObjectEvent", ev("ObjectEvent", action="OBSERVE",
                                             bizStep="destroying", epcList=[SER + "2"])))
    assert obj(led, SER + "2")["s"] == "destroyed"
    rejected(led.submit("maker", "ObjectEvent", ev("ObjectEvent", action="OBSERVE",
                                                   epcList=[SER + "2"])), "inactive_identifier")


def test_ObjectEvent_digital_link_and_epc_are_one_object(led: MemLedger, ev: Ev) -> None:
    commission(led, ev, "maker", "urn:epc:id:sgtin:4012345.011111.77")
    res = led.submit("maker", "ObjectEvent", ev(
        "ObjectEvent", action="ADD", epcList=["https://id.gs1.org/01/04012345111118/21/77"]))
    rejected(res, "already_commissioned")
    ok(led.submit("maker", "ObjectEvent", ev(
        "ObjectEvent", action="OBSERVE", epcList=["https://id.gs1.org/01/04012345111118/21/77"])))
    assert obj(led, "https://id.gs1.org/01/04012345111118/21/77")["id"] == \
        "urn:epc:id:sgtin:4012345.011111.77"   # shown as first recorded


@pytest.mark.parametrize(("kind", "fields", "code"), [
    ("ObjectEvent", {"action": "OBSERVE", "epcList": [SER + "1"], "ilmd": {}},
     "ilmd_not_allowed"),
    ("AggregationEvent", {"action": "OBSERVE", "childEPCs": [SER + "1"], "ilmd": {}},
     "unknown_field"),
    ("AssociationEvent", {"action": "ADD", "childEPCs": [SER + "1"]}, "missing_field"),
    ("AggregationEvent", {"action": "ADD", "childEPCs": [SER + "1"]}, "missing_field"),
    ("TransformationEvent", {"action": "ADD", "inputEPCList": [SER + "1"],
                             "outputEPCList": [SER + "2"]}, "action_not_allowed"),
    ("TransformationEvent", {"inputEPCList": [SER + "1"]}, "missing_field"),
    ("TransactionEvent", {"action": "ADD", "epcList": [SER + "1"]}, "missing_field"),
    ("ObjectEvent", {"action": "ADD"}, "missing_field"),
    ("ObjectEvent", {"action": "MOVE", "epcList": [SER + "1"]}, "bad_action"),
    ("ObjectEvent", {"action": "ADD", "epcList": [SER + "1"], "bizStep": "teleporting"},
     "bad_vocabulary"),
    ("ObjectEvent", {"action": "ADD", "epcList": [SER + "1"], "disposition": "broken"},
     "bad_vocabulary"),
    ("ObjectEvent", {"action": "ADD", "epcList": [SER + "1"],
                     "eventTimeZoneOffset": "+15:00"}, "bad_time"),
    ("ObjectEvent", {"action": "ADD", "epcList": [SER + "1"], "eventTime": "yesterday"},
     "bad_time"),
    ("ObjectEvent", {"action": "ADD", "epcList": [SER + "1", SER + "1"]},
     "duplicate_identifier"),
    ("ObjectEvent", {"action": "ADD", "epcList": ["not a uri"]}, "bad_identifier"),
    ("ObjectEvent", {"action": "ADD", "quantityList": [{"epcClass": LOT + "1",
                                                        "quantity": "1.2.3"}]},
     "bad_quantity"),
    ("ObjectEvent", {"action": "ADD", "epcList": [SER + "1"], "colour": "red"},
     "unknown_field"),
    ("ObjectEvent", {"type": "AggregationEvent", "action": "ADD", "epcList": [SER + "1"]},
     "type_mismatch"),
    ("AggregationEvent", {"action": "ADD", "parentID": SER + "1", "childEPCs": [SER + "1"]},
     "self_containment"),
    ("TransformationEvent", {"inputEPCList": [SER + "1"], "outputEPCList": [SER + "1"]},
     "self_derivation"),
])
def test_event_static_rules(led: MemLedger, ev: Ev, kind: str, fields: dict[str, Any],
                            code: str) -> None:
    rejected(led.submit("maker", kind, {**ev(kind), **fields}), code)


def test_duplicate_eventID_and_error_declaration(led: MemLedger, ev: Ev) -> None:
    body = commission(led, ev, "maker", SER + "3")
    rejected(led.submit("maker", "ObjectEvent", body), "duplicate_event")
    decl = {**body, "errorDeclaration": {"declarationTime": "2025-05-02T00:00:00Z",
                                         "reason": "incorrect_data"}}
    rejected(led.submit("recy", "ObjectEvent", decl), "not_original_submitter")
    ok(led.submit("maker", "ObjectEvent", decl))
    rejected(led.submit("maker", "ObjectEvent", decl), "already_declared")
    # history is never modified: the original event is still recorded as it was
    rec = get(led, K.event(body["eventID"]))
    assert "errorDeclaration" not in rec["b"]
    assert get(led, K.declaration(body["eventID"]))["d"]["reason"] == "incorrect_data"


def test_event_without_eventID_gets_a_content_hash(led: MemLedger, ev: Ev) -> None:
    body = {k: v for k, v in ev("ObjectEvent", action="ADD", epcList=[SER + "4"]).items()
            if k != "eventID"}
    ok(led.submit("maker", "ObjectEvent", body))
    rejected(led.submit("maker", "ObjectEvent", body), "duplicate_event")


def test_possession_and_unseen_identifiers(led: MemLedger, ev: Ev) -> None:
    commission(led, ev, "maker", SER + "5")
    rejected(led.submit("recy", "ObjectEvent", ev("ObjectEvent", action="OBSERVE",
                                                  epcList=[SER + "5"])), "not_possessor")
    # an identifier never seen (imported history): accepted, submitter becomes possessor
    ok(led.submit("recy", "ObjectEvent", ev("ObjectEvent", action="OBSERVE",
                                            epcList=["urn:epc:id:sgtin:7012345.011111.1"])))
    assert obj(led, "urn:epc:id:sgtin:7012345.011111.1")["cus"] == "recy"


def test_PrefixClaim_protects_identifiers(led: MemLedger, ev: Ev) -> None:
    ok(led.submit("maker", "PrefixClaim", {"prefix": "4012345"}))
    rejected(led.submit("recy", "PrefixClaim", {"prefix": "40123"}), "prefix_claimed")
    rejected(led.submit("maker", "PrefixClaim", {"prefix": "4012345"}), "prefix_claimed")
    rejected(led.submit("recy", "ObjectEvent", ev("ObjectEvent", action="ADD",
                                                  epcList=[SER + "6"])), "foreign_prefix")
    rejected(led.submit("recy", "ObjectEvent", ev(
        "ObjectEvent", action="OBSERVE",
        epcList=["https://id.gs1.org/01/04012345111118/21/6"])), "foreign_prefix")
    commission(led, ev, "maker", SER + "6")
    rejected(led.submit("cert", "PrefixClaim", {"prefix": "9012345"}), "permission_denied")
    rejected(led.submit("maker", "PrefixClaim", {"prefix": "12"}), "bad_field")
    # a second claim of another length: identifiers under it are checked too
    ok(led.submit("maker", "PrefixClaim", {"prefix": "70123456"}))
    rejected(led.submit("recy", "ObjectEvent", ev("ObjectEvent", action="ADD", epcList=[
        "urn:epc:id:sgtin:70123456.01111.1"])), "foreign_prefix")
    ok(led.submit("recy", "ObjectEvent", ev("ObjectEvent", action="ADD", epcList=[
        "urn:epc:id:sgtin:7012345.011111.1"])))  # 7012345 is not 70123456


def test_AggregationEvent_pack_and_unpack(led: MemLedger, ev: Ev) -> None:
    pallet = "urn:epc:id:sscc:4012345.0000000001"
    commission(led, ev, "maker", SER + "10", SER + "11")
    ok(led.submit("maker", "AggregationEvent", ev("AggregationEvent", action="ADD",
                                                  bizStep="packing", parentID=pallet,
                                                  childEPCs=[SER + "10", SER + "11"])))
    assert obj(led, SER + "10")["in"] == id_key(pallet)
    assert obj(led, pallet)["kc"] == [id_key(SER + "10"), id_key(SER + "11")]
    other = "urn:epc:id:sscc:4012345.0000000002"
    rejected(led.submit("maker", "AggregationEvent", ev("AggregationEvent", action="ADD",
                                                        parentID=other,
                                                        childEPCs=[SER + "10"])),
             "already_contained")
    rejected(led.submit("maker", "AggregationEvent", ev("AggregationEvent", action="DELETE",
                                                        parentID=other,
                                                        childEPCs=[SER + "10"])),
             "not_contained")
    # DELETE without children empties the container
    ok(led.submit("maker", "AggregationEvent", ev("AggregationEvent", action="DELETE",
                                                  bizStep="unpacking", parentID=pallet)))
    assert "in" not in obj(led, SER + "10") and obj(led, pallet)["kc"] == []
    iv = edges(led, SER + "10", "ci")[id_key(pallet)]
    assert iv[0][0] is not None and iv[0][1] is not None   # closed interval
    assert edges(led, pallet, "co")[id_key(SER + "10")] == iv


def test_AssociationEvent_install_and_remove(led: MemLedger, ev: Ev) -> None:
    bike = SER + "100"
    commission(led, ev, "maker", bike, SER + "101")
    ok(led.submit("maker", "AssociationEvent", ev("AssociationEvent", action="ADD",
                                                  bizStep="assembling", parentID=bike,
                                                  childEPCs=[SER + "101"])))
    assert obj(led, SER + "101")["of"] == id_key(bike)
    rejected(led.submit("maker", "AssociationEvent", ev("AssociationEvent", action="ADD",
                                                        parentID=SER + "102",
                                                        childEPCs=[SER + "101"])),
             "already_installed")
    ok(led.submit("maker", "AssociationEvent", ev("AssociationEvent", action="DELETE",
                                                  bizStep="removing", parentID=bike,
                                                  childEPCs=[SER + "101"])))
    rejected(led.submit("maker", "AssociationEvent", ev("AssociationEvent", action="DELETE",
                                                        parentID=bike,
                                                        childEPCs=[SER + "101"])),
             "not_installed")
    iv = edges(led, SER + "101", "cf")[id_key(bike)]
    assert len(iv) == 1 and iv[0][1] is not None


def test_TransformationEvent_edges_and_transformationID(led: MemLedger, ev: Ev) -> None:
    lot(led, ev, "maker", LOT + "A")
    lot(led, ev, "maker", LOT + "B")
    tid = "urn:uuid:tf-1"
    ok(led.submit("maker", "TransformationEvent", ev(
        "TransformationEvent", transformationID=tid,
        inputQuantityList=[{"epcClass": LOT + "A", "quantity": "2.5", "uom": "KGM"}])))
    ok(led.submit("maker", "TransformationEvent", ev(
        "TransformationEvent", transformationID=tid, outputEPCList=[SER + "200"])))
    ok(led.submit("maker", "TransformationEvent", ev(
        "TransformationEvent", transformationID=tid,
        inputQuantityList=[{"epcClass": LOT + "B", "quantity": 3}])))
    ins = sorted(i for v in edges(led, SER + "200", "df").values() for i in v)
    assert ins == sorted([id_key(LOT + "A"), id_key(LOT + "B")])
    assert obj(led, LOT + "A")["used"] is True
    rejected(led.submit("maker", "TransformationEvent", ev(
        "TransformationEvent", inputQuantityList=[{"epcClass": LOT + "A", "quantity": 1}],
        outputEPCList=[SER + "200"])), "already_commissioned")


def test_TransactionEvent_open_and_close(led: MemLedger, ev: Ev) -> None:
    commission(led, ev, "maker", SER + "300")
    bt = [{"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:4012345000009:PO1"}]
    ok(led.submit("maker", "TransactionEvent", ev("TransactionEvent", action="ADD",
                                                  epcList=[SER + "300"],
                                                  bizTransactionList=bt)))
    assert obj(led, SER + "300")["btx"] == [["po", bt[0]["bizTransaction"]]]
    ok(led.submit("maker", "TransactionEvent", ev("TransactionEvent", action="DELETE",
                                                  epcList=[SER + "300"],
                                                  bizTransactionList=bt)))
    assert obj(led, SER + "300")["btx"] == []
    bad = [{"type": "invoice-ish", "bizTransaction": "urn:x:1"}]
    rejected(led.submit("maker", "TransactionEvent", ev("TransactionEvent", action="ADD",
                                                        epcList=[SER + "300"],
                                                        bizTransactionList=bad)),
             "bad_vocabulary")


@pytest.mark.parametrize("kind", ["ObjectEvent", "AggregationEvent", "AssociationEvent",
                                  "TransformationEvent", "TransactionEvent"])
@pytest.mark.parametrize("who", ["cert", "auth", "obs"])
def test_events_need_event_write_permission(led: MemLedger, ev: Ev, kind: str,
                                            who: str) -> None:
    body = {**ev(kind), "action": "ADD", "epcList": [SER + "1"]}
    rejected(led.submit(who, kind, body), "permission_denied")


# -- custody and ownership -----------------------------------------------------------------------

def test_Custody_propose_accept_moves_item_and_its_contents(led: MemLedger, ev: Ev) -> None:
    bike = SER + "400"
    commission(led, ev, "maker", bike, SER + "401")
    ok(led.submit("maker", "AssociationEvent", ev("AssociationEvent", action="ADD",
                                                  parentID=bike, childEPCs=[SER + "401"])))
    rejected(led.submit("maker", "CustodyPropose", {"proposalId": "p0", "epcs": [SER + "401"],
                                                    "role": "both", "to": "recy"}),
             "travels_with_parent")
    ok(led.submit("maker", "CustodyPropose", {"proposalId": "p1", "epcs": [bike],
                                              "role": "custodian", "to": "recy"}))
    rejected(led.submit("maker", "CustodyAnswer", {"proposalId": "p1", "response": "accept"}),
             "permission_denied")
    ok(led.submit("recy", "CustodyAnswer", {"proposalId": "p1", "response": "accept"}))
    o = obj(led, bike)
    assert (o["cus"], o["own"]) == ("recy", "maker")      # exactly one owner, still maker
    assert obj(led, SER + "401")["cus"] == "recy"
    rejected(led.submit("recy", "CustodyAnswer", {"proposalId": "p1", "response": "accept"}),
             "proposal_closed")
    rejected(led.submit("recy", "CustodyPropose", {"proposalId": "p2", "epcs": [bike],
                                                   "role": "owner", "to": "maker"}),
             "not_owner")
    ok(led.submit("maker", "CustodyPropose", {"proposalId": "p3", "epcs": [bike],
                                              "role": "owner", "to": "recy"}))
    ok(led.submit("maker", "CustodyAnswer", {"proposalId": "p3", "response": "cancel"}))
    rejected(led.submit("recy", "CustodyAnswer", {"proposalId": "p3", "response": "accept"}),
             "proposal_closed")


def test_Custody_rules(led: MemLedger, ev: Ev) -> None:
    commission(led, ev, "maker", SER + "500")
    rejected(led.submit("maker", "CustodyPropose", {"proposalId": "q", "epcs": [SER + "500"],
                                                    "role": "both", "to": "maker"}),
             "self_transfer")
    rejected(led.submit("maker", "CustodyPropose", {"proposalId": "q", "epcs": [SER + "500"],
                                                    "role": "both", "to": "nobody"}),
             "unknown_org")
    rejected(led.submit("maker", "CustodyPropose", {"proposalId": "q", "epcs": [SER + "501"],
                                                    "role": "both", "to": "recy"}),
             "unknown_identifier")
    rejected(led.submit("recy", "CustodyPropose", {"proposalId": "q", "epcs": [SER + "500"],
                                                   "role": "custodian", "to": "maker"}),
             "not_custodian")
    rejected(led.submit("cert", "CustodyPropose", {"proposalId": "q", "epcs": [SER + "500"],
                                                   "role": "both", "to": "recy"}),
             "permission_denied")
    ok(led.submit("maker", "CustodyPropose", {"proposalId": "q", "epcs": [SER + "500"],
                                              "role": "both", "to": "recy"}))
    rejected(led.submit("maker", "CustodyPropose", {"proposalId": "q", "epcs": [SER + "500"],
                                                    "role": "both", "to": "recy"}),
             "duplicate_id")
    rejected(led.submit("recy", "CustodyAnswer", {"proposalId": "zz", "response": "accept"}),
             "unknown_proposal")
    # the proposer gave the item away meanwhile: acceptance re-checks
    ok(led.submit("maker", "CustodyPropose", {"proposalId": "q2", "epcs": [SER + "500"],
                                              "role": "both", "to": "recy"}))
    ok(led.submit("recy", "CustodyAnswer", {"proposalId": "q", "response": "accept"}))
    rejected(led.submit("recy", "CustodyAnswer", {"proposalId": "q2", "response": "accept"}),
             "not_custodian")


def test_Custody_of_lots_adds_a_holder(led: MemLedger, ev: Ev) -> None:
    lot(led, ev, "maker", LOT + "L1")
    ok(led.submit("maker", "CustodyPropose", {"proposalId": "l", "epcs": [LOT + "L1"],
                                              "role": "custodian", "to": "recy"}))
    ok(led.submit("recy", "CustodyAnswer", {"proposalId": "l", "response": "accept"}))
    assert obj(led, LOT + "L1")["hold"] == ["maker", "recy"]
    ok(led.submit("recy", "TransformationEvent", ev(
        "TransformationEvent", inputQuantityList=[{"epcClass": LOT + "L1", "quantity": 1}],
        outputEPCList=[OTHER + "1"])))


# -- organisations and agents --------------------------------------------------------------------

def test_Org_and_agent_management(led: MemLedger) -> None:
    newkey = SigningKey(b"\x05" * 32)
    rejected(led.submit("recy", "OrgRegister", {"orgId": "x", "key": newkey.public,
                                                "roles": ["validator"]}),
             "validator_role_fixed")
    ok(led.submit("maker", "OrgRegister", {"orgId": "fleet", "key": newkey.public,
                                           "roles": ["member"]}))
    rejected(led.submit("maker", "OrgRegister", {"orgId": "fleet", "key": b"\x01" * 32,
                                                 "roles": ["member"]}), "org_exists")
    rejected(led.submit("maker", "OrgRegister", {"orgId": "y", "key": newkey.public,
                                                 "roles": ["member"]}), "agent_exists")
    rejected(led.submit("maker", "OrgRegister", {"orgId": "y", "key": b"\x02" * 32,
                                                 "roles": ["wizard"]}), "unknown_role")
    rejected(led.submit("cert", "OrgRegister", {"orgId": "z", "key": b"\x03" * 32,
                                                "roles": ["member"]}), "permission_denied")
    ok(led.submit("maker", "OrgSetRoles", {"orgId": "fleet", "roles": ["member", "recycler"]}))
    rejected(led.submit("maker", "OrgSetRoles", {"orgId": "fleet", "roles": ["validator"]}),
             "validator_role_fixed")
    # the new org's agent can sign
    led.keys["fleet"] = newkey
    ok(led.submit("fleet", "PrefixClaim", {"prefix": "6012345"}))
    extra = SigningKey(b"\x06" * 32)
    ok(led.submit("fleet", "AgentAdd", {"key": extra.public}))
    led.keys["fleet2"] = extra
    ok(led.submit("fleet2", "AgentSetActive", {"key": newkey.public, "active": False}))
    rejected(led.submit("fleet", "PrefixClaim", {"prefix": "6112345"}), "inactive_agent")
    rejected(led.submit("fleet2", "AgentSetActive", {"key": extra.public, "active": False}),
             "self_deactivation")
    rejected(led.submit("maker", "AgentSetActive", {"key": newkey.public, "active": True}),
             "permission_denied")


# -- attestations and quality notices -------------------------------------------------------------

def test_Attestation_issue_and_revoke(led: MemLedger, ev: Ev) -> None:
    lot(led, ev, "maker", LOT + "C1")
    att = {"certId": "c1", "subject": LOT + "C1", "standard": "UN 38.3",
           "validFrom": "2025-01-01T00:00:00Z", "validTo": "2026-01-01T00:00:00Z"}
    rejected(led.submit("maker", "AttestationIssue", att), "permission_denied")
    ok(led.submit("cert", "AttestationIssue", att))
    rejected(led.submit("cert", "AttestationIssue", att), "duplicate_id")
    rejected(led.submit("cert", "AttestationIssue", {**att, "certId": "c2",
                                                     "subject": LOT + "nope"}),
             "unknown_subject")
    rejected(led.submit("cert", "AttestationIssue", {**att, "certId": "c3",
                                                     "validTo": "2024-01-01T00:00:00Z"}),
             "bad_interval")
    ok(led.submit("cert", "AttestationIssue", {**att, "certId": "c4", "subject": "maker"}))
    rejected(led.submit("maker", "AttestationRevoke", {"certId": "c1"}), "permission_denied")
    ok(led.submit("cert", "AttestationRevoke", {"certId": "c1", "reason": "expired test"}))
    rejected(led.submit("cert", "AttestationRevoke", {"certId": "c1"}), "already_revoked")
    assert get(led, K.attestation("c1"))["revoked"]["reason"] == "expired test"


def test_QualityNotice_permissions(led: MemLedger, ev: Ev) -> None:
    lot(led, ev, "maker", LOT + "Q")
    notice = {"noticeId": "n1", "type": "recall", "affected": [LOT + "Q"]}
    rejected(led.submit("recy", "QualityNotice", notice), "permission_denied")
    ok(led.submit("recy", "QualityNotice", {**notice, "type": "investigation"}))
    ok(led.submit("auth", "QualityNotice", {**notice, "noticeId": "n2"}))   # authority
    ok(led.submit("maker", "QualityNotice", {**notice, "noticeId": "n3"}))  # maker
    rejected(led.submit("maker", "QualityNotice", {**notice, "noticeId": "n4",
                                                   "affected": [LOT + "zz"]}),
             "unknown_identifier")
    rejected(led.submit("obs", "QualityNotice", {**notice, "noticeId": "n5"}),
             "permission_denied")
    rejected(led.submit("maker", "QualityNoticeUpdate", {"noticeId": "n2", "status": "closed"}),
             "permission_denied")
    ok(led.submit("maker", "QualityNoticeUpdate", {"noticeId": "n3", "status": "closed"}))
    rejected(led.submit("maker", "QualityNoticeUpdate", {"noticeId": "n3", "status": "open"}),
             "notice_closed")


# -- passports -------------------------------------------------------------------------------------

def test_Passport_lifecycle_and_tiers(led: MemLedger, ev: Ev) -> None:
    item = SER + "600"
    commission(led, ev, "maker", item)
    sealed = seal_attribute("dismantling", "legit_interest", {"uri": "https://x/d"},
                            {"recy": led.keys["recy"].public})
    pp = {"passportId": "pp1", "subject": item, "level": "item", "attributes": [
        {"path": "mass.kg", "tier": "public", "value": "12.5"}, sealed]}
    rejected(led.submit("recy", "PassportIssue", pp), "not_possessor")
    rejected(led.submit("maker", "PassportIssue", {**pp, "attributes": [
        {"path": "x", "tier": "authority", "value": "clear"}]}), "tier_violation")
    rejected(led.submit("maker", "PassportIssue", {**pp, "attributes": [
        {"path": "x", "tier": "public"}]}), "tier_violation")
    ok(led.submit("maker", "PassportIssue", pp))
    rejected(led.submit("maker", "PassportIssue", pp), "duplicate_id")
    rec = get(led, K.passport("pp1"))
    stored = rec["attrs"][1]
    assert "value" not in stored
    value, salt = open_attribute(stored, "recy", led.keys["recy"])
    assert value == {"uri": "https://x/d"} and verify_disclosure(stored, value, salt)
    assert not verify_disclosure(stored, {"uri": "https://x/other"}, salt)
    ok(led.submit("maker", "PassportUpdate", {"passportId": "pp1", "attributes": [
        {"path": "mass.kg", "tier": "public", "value": "12.7"}]}))
    rejected(led.submit("recy", "PassportUpdate", {"passportId": "pp1", "attributes": [
        {"path": "mass.kg", "tier": "public", "value": "1"}]}), "permission_denied")
    hist = list(led.state.iter_prefix(b"ph/pp1\x00"))
    assert len(hist) == 2     # history kept
    rejected(led.submit("maker", "PassportStatus", {"passportId": "pp1", "status": "ended"}),
             "subject_not_recycled")
    ok(led.submit("maker", "PassportStatus", {"passportId": "pp1", "status": "waste",
                                              "newResponsibleOrg": "recy"}))
    assert get(led, K.passport("pp1"))["resp"] == "recy"
    ok(led.submit("maker", "ObjectEvent", ev("ObjectEvent", action="DELETE",
                                             epcList=[item])))
    ok(led.submit("recy", "PassportStatus", {"passportId": "pp1", "status": "ended"}))
    rejected(led.submit("recy", "PassportStatus", {"passportId": "pp1", "status": "reused"}),
             "passport_ended")
    rejected(led.submit("recy", "PassportUpdate", {"passportId": "pp1", "attributes": [
        {"path": "a", "tier": "public", "value": "1"}]}), "passport_ended")
    rejected(led.submit("cert", "PassportIssue", {**pp, "passportId": "pp9"}),
             "permission_denied")


def test_Passport_supersede_links_predecessors(led: MemLedger, ev: Ev) -> None:
    item = SER + "700"
    commission(led, ev, "maker", item)
    ok(led.submit("maker", "PassportIssue", {"passportId": "old", "subject": item,
                                             "attributes": []}))
    sup = {"passportId": "new", "subject": item, "predecessors": ["old"],
           "status": "repurposed", "attributes": []}
    rejected(led.submit("maker", "PassportSupersede", {**sup, "predecessors": []}),
             "missing_field")
    rejected(led.submit("maker", "PassportSupersede", {**sup, "predecessors": ["ghost"]}),
             "unknown_passport")
    ok(led.submit("maker", "PassportSupersede", sup))
    assert get(led, K.passport("old"))["succ"] == ["new"]
    assert get(led, K.passport("new"))["pred"] == ["old"]
    assert get(led, K.edge(b"su", "new", "old")) == "new"
    assert obj(led, item)["pp"] == "new"


# -- determinism of execute -------------------------------------------------------------------

def test_execute_is_pure(led: MemLedger, ev: Ev) -> None:
    txs = [led.sign("maker", "ObjectEvent", ev("ObjectEvent", action="ADD",
                                               epcList=[SER + str(800 + i)]))
           for i in range(20)]
    ctx = BlockContext(chain=led.genesis.chain_id, height=1, time_ms=5, proposer=b"\x00" * 32)
    a = ProvenanceApp().execute(led.state, ctx, txs)
    b = ProvenanceApp().execute(led.state, ctx, txs)
    assert a.writes == b.writes and a.all_ok
    noidx = ProvenanceApp(index=False).execute(led.state, ctx, txs)
    assert set(noidx.writes) <= set(a.writes)
    assert all(not k.startswith((b"g", b"xe/")) for k in noidx.writes)
    assert all("g" not in decode(v) and "x" not in decode(v)
               for k, v in noidx.writes.items() if k.startswith(b"obj/") and v)


def test_adjacency_spills_to_index_keys_for_hot_lots(led: MemLedger, ev: Ev) -> None:
    from ledger.provenance._app import CAP_EDGES, CAP_EVENTS

    lot(led, ev, "maker", LOT + "HOT", "100000")
    n = CAP_EDGES + 5
    txs = [led.sign("maker", "TransformationEvent", ev(
        "TransformationEvent", inputQuantityList=[{"epcClass": LOT + "HOT", "quantity": 1}],
        outputEPCList=[SER + f"h{i}"])) for i in range(n)]
    txs += [led.sign("maker", "ObjectEvent", ev("ObjectEvent", action="OBSERVE",
                                                quantityList=[{"epcClass": LOT + "HOT"}]))
            for _ in range(CAP_EVENTS + 3)]
    assert led.commit(txs).all_ok
    o = obj(led, LOT + "HOT")
    assert len(o["g"]) == CAP_EDGES and o["gs"] and o["xs"]
    assert len(edges(led, LOT + "HOT", "dt")) == n
    from ledger.provenance import _query as Q

    fwd = Q.trace_forward(led.state, LOT + "HOT")
    assert len(fwd["endItems"]) == n
    assert len(Q.events(led.state, match_any_epc=[LOT + "HOT"])) == 1 + n + CAP_EVENTS + 3


@pytest.mark.parametrize(("who", "kind", "body"), [
    ("obs", "OrgRegister", {"orgId": "q", "key": b"\x09" * 32, "roles": ["member"]}),
    ("cert", "OrgSetRoles", {"orgId": "cert", "roles": ["certifier", "member"]}),
    ("obs", "PrefixClaim", {"prefix": "7777777"}),
    ("obs", "CustodyPropose", {"proposalId": "p", "epcs": [SER + "1"], "role": "both",
                               "to": "maker"}),
    ("cert", "CustodyAnswer", {"proposalId": "p", "response": "accept"}),
    ("maker", "AttestationIssue", {"certId": "c", "subject": "maker", "standard": "x"}),
    ("recy", "AttestationRevoke", {"certId": "c"}),
    ("obs", "QualityNotice", {"noticeId": "n", "type": "investigation",
                              "affected": [SER + "1"]}),
    ("obs", "QualityNoticeUpdate", {"noticeId": "n", "status": "closed"}),
    ("cert", "PassportIssue", {"passportId": "p", "subject": SER + "1", "attributes": []}),
    ("auth", "PassportUpdate", {"passportId": "p", "attributes": []}),
    ("obs", "PassportStatus", {"passportId": "p", "status": "reused"}),
    ("cert", "PassportSupersede", {"passportId": "p2", "subject": SER + "1",
                                   "predecessors": ["p"], "attributes": []}),
])
def test_permission_per_kind(led: MemLedger, who: str, kind: str, body: dict[str, Any]) -> None:
    res = led.submit(who, kind, body)
    rejected(res, "permission_denied")
    assert "lacks the permission" in res.reason
