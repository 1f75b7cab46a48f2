"""The e-bike scenario: a small circular supply chain, as a list of (member, kind, body) steps.

Aluminium from recycled scrap and a primary smelter → tubes → frames; battery cells from three
lots (lot B defective) → packs; frames + packs + motors → e-bikes, each with a passport; a
certifier attests the cells; a fleet operator buys two bikes; the cell maker recalls lot B; one
e-bike reaches end of life, is disassembled, its pack's passport is superseded for second life,
its frame is remelted and the recycled lot feeds a new frame whose trace back shows the loop.

`steps()` is plain data so the demo can replay the same steps through a running node's API;
`build(out, seed)` writes them as a sealed dev chain (`partledger dev generate --scenario ebike`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger._crypto import SigningKey, sha256
from ledger.provenance._ids import id_key, to_digital_link
from ledger.provenance._passport import seal_attribute
from ledger.provenance._workload import iso, lgtin, sgln, sgtin

SMELTER, COMPONENTS, CELLS, ASSEMBLER, CERTIFIER, FLEET = (
    "circular-alu", "frame-works", "volt-cells", "ebike-co", "cert-lab", "city-fleet")
#: genesis members: (name, roles, GS1 company prefix)
MEMBERS: tuple[tuple[str, tuple[str, ...], str | None], ...] = (
    (SMELTER, ("validator", "member", "recycler"), "4000001"),
    (COMPONENTS, ("validator", "member"), "4000002"),
    (CELLS, ("validator", "member"), "4000003"),
    (ASSEMBLER, ("validator", "member"), "4000004"),
    (CERTIFIER, ("certifier",), None),
)
CP = {name: cp for name, _, cp in MEMBERS if cp}
N_BIKES = 4
CTX = [{"ex": "https://example.com/ebike/"}]

Step = tuple[str, str, dict[str, Any]]


def org_key(name: str, seed: int) -> SigningKey:
    return SigningKey(sha256(f"partledger/ebike/{seed}/org/{name}".encode()))


def node_key(name: str, seed: int) -> SigningKey:
    return SigningKey(sha256(f"partledger/ebike/{seed}/node/{name}".encode()))


@dataclass(frozen=True)
class Ids:
    scrap_lot: str
    primary_lot: str
    alu_lot: str
    tube_lot: str
    frames: list[str]
    motors: list[str]
    cell_lots: list[str]
    packs: list[str]
    ebikes: list[str]
    recycled_lot: str
    tube_lot_2: str
    new_frame: str

    @property
    def defective_cell_lot(self) -> str:
        return self.cell_lots[1]

    @property
    def affected_ebikes(self) -> list[str]:
        """The e-bikes whose packs contain cells of the defective lot (bikes 2 and 4)."""
        return [self.ebikes[1], self.ebikes[3]]


def ids() -> Ids:
    s, c, v, a = (CP[SMELTER], CP[COMPONENTS], CP[CELLS], CP[ASSEMBLER])
    return Ids(
        scrap_lot=lgtin(s, 1, "SCRAP-2025-01"), primary_lot=lgtin(s, 2, "PRIM-2025-01"),
        alu_lot=lgtin(s, 3, "ALU-6061-0001"), tube_lot=lgtin(c, 10, "TUBE-0001"),
        frames=[sgtin(c, 11, f"FR{i}") for i in range(1, N_BIKES + 1)],
        motors=[sgtin(c, 12, f"MO{i}") for i in range(1, N_BIKES + 1)],
        cell_lots=[lgtin(v, 20, f"CELL-{x}") for x in "ABC"],
        packs=[sgtin(v, 21, f"PK{i}") for i in range(1, N_BIKES + 1)],
        # e-bikes are first recorded as GS1 Digital Link URIs
        ebikes=[_dl(sgtin(a, 30, f"EB{i}")) for i in range(1, N_BIKES + 1)],
        recycled_lot=lgtin(s, 4, "ALU-R-0001"), tube_lot_2=lgtin(c, 10, "TUBE-0002"),
        new_frame=sgtin(c, 11, "FR-NEW-1"))


def _dl(epc: str) -> str:
    dl = to_digital_link(id_key(epc))
    assert dl is not None
    return dl


class _Clock:
    def __init__(self) -> None:
        self.t = datetime(2025, 3, 3, 7, 0, tzinfo=UTC)
        self.n = 0

    def ev(self, typ: str, **fields: Any) -> dict[str, Any]:
        self.t += timedelta(hours=3)
        self.n += 1
        return {"type": typ, "eventID": f"urn:uuid:0000eb1e-0000-4000-8000-{self.n:012d}",
                "eventTime": iso(self.t), "eventTimeZoneOffset": "+01:00", **fields}


def _loc(member: str, n: int = 1) -> dict[str, str]:
    return {"id": sgln(CP.get(member, "4000009"), n)}


def _qty(epc_class: str, q: str, uom: str = "KGM") -> dict[str, Any]:
    return {"epcClass": epc_class, "quantity": q, "uom": uom}


def _handover(pid: str, frm: str, to: str, epcs: list[str], role: str = "both") -> list[Step]:
    return [(frm, "CustodyPropose", {"proposalId": pid, "epcs": epcs, "role": role, "to": to}),
            (to, "CustodyAnswer", {"proposalId": pid, "response": "accept"})]


def phases(seed: int = 1) -> list[list[Step]]:
    """The scenario in blocks (each phase one block; later steps depend on earlier ones)."""
    x, c = ids(), _Clock()
    rnd = _SeededBytes(seed)
    smelter_pub = org_key(SMELTER, seed).public
    out: list[list[Step]] = []

    # 1. consortium setup: prefix claims, the fleet operator joins
    out.append([(m, "PrefixClaim", {"prefix": cp}) for m, _, cp in MEMBERS if cp] + [
        (ASSEMBLER, "OrgRegister", {"orgId": FLEET, "name": "City Bike Fleet",
                                    "key": org_key(FLEET, seed).public, "roles": ["member"]})])

    # 2. aluminium: scrap + primary → alloy lot → tubes → frames; motors
    out.append([
        (SMELTER, "ObjectEvent", c.ev(
            "ObjectEvent", action="ADD", bizStep="commissioning", disposition="active",
            quantityList=[_qty(x.scrap_lot, "400")], bizLocation=_loc(SMELTER),
            readPoint=_loc(SMELTER), ilmd={"ex:material": "post-consumer aluminium scrap"},
            **{"@context": CTX})),
        (SMELTER, "ObjectEvent", c.ev(
            "ObjectEvent", action="ADD", bizStep="commissioning", disposition="active",
            quantityList=[_qty(x.primary_lot, "600")], bizLocation=_loc(SMELTER),
            readPoint=_loc(SMELTER), ilmd={"ex:material": "primary aluminium P1020"},
            **{"@context": CTX})),
        (SMELTER, "TransformationEvent", c.ev(
            "TransformationEvent", bizStep="commissioning", disposition="active",
            inputQuantityList=[_qty(x.scrap_lot, "400"), _qty(x.primary_lot, "600")],
            outputQuantityList=[_qty(x.alu_lot, "990.5")], bizLocation=_loc(SMELTER),
            readPoint=_loc(SMELTER, 2),
            ilmd={"ex:alloy": "6061-T6", "ex:recycledShare": "0.40"}, **{"@context": CTX})),
        *_handover("ho-alu-1", SMELTER, COMPONENTS, [x.alu_lot], "custodian"),
        (COMPONENTS, "TransformationEvent", c.ev(
            "TransformationEvent", bizStep="commissioning", disposition="active",
            inputQuantityList=[_qty(x.alu_lot, "500")],
            outputQuantityList=[_qty(x.tube_lot, "480")], bizLocation=_loc(COMPONENTS))),
        (COMPONENTS, "TransformationEvent", c.ev(
            "TransformationEvent", bizStep="commissioning", disposition="active",
            inputQuantityList=[_qty(x.tube_lot, "9.6")], outputEPCList=x.frames,
            bizLocation=_loc(COMPONENTS))),
        (COMPONENTS, "ObjectEvent", c.ev(
            "ObjectEvent", action="ADD", bizStep="commissioning", disposition="active",
            epcList=x.motors, bizLocation=_loc(COMPONENTS, 2))),
    ])

    # 3. cells: three lots, certified; packs from mixed lots (B is the bad one)
    cells: list[Step] = [(CELLS, "ObjectEvent", c.ev(
        "ObjectEvent", action="ADD", bizStep="commissioning", disposition="active",
        quantityList=[_qty(lot, "200", "H87")], bizLocation=_loc(CELLS),
        ilmd={"ex:chemistry": "NMC811"}, **{"@context": CTX})) for lot in x.cell_lots]
    cells += [(CERTIFIER, "AttestationIssue", {
        "certId": f"un383-{i}", "subject": lot, "standard": "UN 38.3 transport test",
        "validFrom": "2025-03-01T00:00:00Z", "validTo": "2027-03-01T00:00:00Z",
        "result": "pass", "docHash": sha256(f"test report {lot}".encode()),
        "uri": f"https://cert-lab.example.com/reports/un383-{i}"})
        for i, lot in enumerate(x.cell_lots)]
    mix = [[0], [0, 1], [2], [1, 2]]   # pack i takes cells from these lots
    for pack, lots in zip(x.packs, mix, strict=True):
        cells.append((CELLS, "TransformationEvent", c.ev(
            "TransformationEvent", bizStep="commissioning", disposition="active",
            inputQuantityList=[_qty(x.cell_lots[j], "20", "H87") for j in lots],
            outputEPCList=[pack], bizLocation=_loc(CELLS))))
    for i, pack in enumerate(x.packs):
        cells.append((CELLS, "PassportIssue", {
            "passportId": f"bp-pack-{i + 1}", "subject": pack, "level": "item",
            "profile": "battery-annexXIII", "attributes": [
                {"path": "manufacturer", "tier": "public", "value": CELLS},
                {"path": "chemistry", "tier": "public", "value": "NMC811"},
                {"path": "carbonFootprint.kgCO2ePerKWh", "tier": "public", "value": "61.2"},
                seal_attribute("stateOfHealth", "legit_interest", {"soh": "1.00"},
                               {SMELTER: smelter_pub}, random_bytes=rnd),
            ]}))
    out.append(cells)

    # 4. ship to the assembler; assemble e-bikes; passports; sell two to the fleet
    asm: list[Step] = [
        *_handover("ho-frames", COMPONENTS, ASSEMBLER, x.frames + x.motors),
        *_handover("ho-packs", CELLS, ASSEMBLER, x.packs),
    ]
    for i, bike in enumerate(x.ebikes):
        asm.append((ASSEMBLER, "ObjectEvent", c.ev(
            "ObjectEvent", action="ADD", bizStep="commissioning", disposition="active",
            epcList=[bike], bizLocation=_loc(ASSEMBLER))))
        asm.append((ASSEMBLER, "AssociationEvent", c.ev(
            "AssociationEvent", action="ADD", bizStep="assembling", disposition="in_progress",
            parentID=bike, childEPCs=[x.frames[i], x.packs[i], x.motors[i]],
            bizLocation=_loc(ASSEMBLER))))
        asm.append((ASSEMBLER, "PassportIssue", {
            "passportId": f"pp-ebike-{i + 1}", "subject": bike, "level": "item",
            "profile": "espr-ebike", "attributes": [
                {"path": "manufacturer", "tier": "public", "value": ASSEMBLER},
                {"path": "model", "tier": "public", "value": "Urban E1"},
                {"path": "composition.aluminium.kg", "tier": "public", "value": "2.4"},
                {"path": "recycledContent.aluminium.share", "tier": "public", "value": "0.40"},
                {"path": "carbonFootprint.kgCO2e", "tier": "public", "value": "134.0"},
                seal_attribute("dismantling.instructions", "legit_interest",
                               {"uri": "https://ebike-co.example.com/dismantling/E1",
                                "sha256": sha256(b"dismantling manual E1").hex()},
                               {SMELTER: smelter_pub}, random_bytes=rnd),
            ]}))
    asm.append((ASSEMBLER, "ObjectEvent", c.ev(
        "ObjectEvent", action="OBSERVE", bizStep="inspecting", disposition="non_conformant",
        epcList=[x.ebikes[2]], bizLocation=_loc(ASSEMBLER))))
    wrong = asm[-1][2]
    asm.append((ASSEMBLER, "ObjectEvent", {**wrong, "errorDeclaration": {
        "declarationTime": iso(c.t + timedelta(minutes=30)), "reason": "incorrect_data",
        "correctiveEventIDs": ["urn:uuid:0000eb1e-0000-4000-8000-9999999999a1"]}}))
    asm.append((ASSEMBLER, "ObjectEvent", {
        **c.ev("ObjectEvent", action="OBSERVE", bizStep="inspecting", disposition="conformant",
               epcList=[x.ebikes[2]], bizLocation=_loc(ASSEMBLER)),
        "eventID": "urn:uuid:0000eb1e-0000-4000-8000-9999999999a1"}))
    asm.append((ASSEMBLER, "TransactionEvent", c.ev(
        "TransactionEvent", action="ADD", bizStep="shipping", epcList=[x.ebikes[3]],
        bizTransactionList=[{"type": "po",
                             "bizTransaction": "urn:epcglobal:cbv:bt:4000004000009:PO-778"}])))
    asm += _handover("ho-fleet", ASSEMBLER, FLEET, [x.ebikes[0], x.ebikes[1]])
    out.append(asm)

    # 5. recall of the defective cell lot
    out.append([(CELLS, "QualityNotice", {
        "noticeId": "recall-cell-B", "type": "recall", "affected": [x.defective_cell_lot],
        "severity": "critical", "description": "separator defect in cell lot B"})])

    # 6. end of life of e-bike 1: disassembly, second-life pack, frame remelted, new frame
    b1 = x.ebikes[0]
    eol: list[Step] = [
        *_handover("ho-eol-1", FLEET, SMELTER, [b1]),
        (SMELTER, "ObjectEvent", c.ev(
            "ObjectEvent", action="OBSERVE", bizStep="collecting", epcList=[b1],
            bizLocation=_loc(SMELTER, 3))),
        (SMELTER, "PassportStatus", {"passportId": "pp-ebike-1", "status": "waste",
                                     "newResponsibleOrg": SMELTER}),
        (SMELTER, "AssociationEvent", c.ev(
            "AssociationEvent", action="DELETE", bizStep="disassembling", parentID=b1,
            childEPCs=[x.frames[0], x.packs[0], x.motors[0]], bizLocation=_loc(SMELTER, 3))),
        (SMELTER, "ObjectEvent", c.ev(
            "ObjectEvent", action="DELETE", bizStep="decommissioning", epcList=[b1],
            bizLocation=_loc(SMELTER, 3))),
        (SMELTER, "PassportStatus", {"passportId": "pp-ebike-1", "status": "ended"}),
        (SMELTER, "PassportSupersede", {
            "passportId": "bp-pack-1-sl", "subject": x.packs[0], "level": "item",
            "profile": "battery-annexXIII", "predecessors": ["bp-pack-1"],
            "status": "repurposed", "attributes": [
                {"path": "stateOfHealth", "tier": "public", "value": "0.81"},
                {"path": "secondLife.use", "tier": "public", "value": "stationary storage"}]}),
        (SMELTER, "TransformationEvent", c.ev(
            "TransformationEvent", bizStep="commissioning", disposition="active",
            inputEPCList=[x.frames[0]], outputQuantityList=[_qty(x.recycled_lot, "2.3")],
            bizLocation=_loc(SMELTER, 2),
            ilmd={"ex:recycledShare": "1.00", "ex:process": "remelting"},
            **{"@context": CTX})),
        *_handover("ho-alu-r", SMELTER, COMPONENTS, [x.recycled_lot], "custodian"),
        (COMPONENTS, "TransformationEvent", c.ev(
            "TransformationEvent", bizStep="commissioning", disposition="active",
            inputQuantityList=[_qty(x.recycled_lot, "2.3")],
            outputQuantityList=[_qty(x.tube_lot_2, "2.2")], bizLocation=_loc(COMPONENTS))),
        (COMPONENTS, "TransformationEvent", c.ev(
            "TransformationEvent", bizStep="commissioning", disposition="active",
            inputQuantityList=[_qty(x.tube_lot_2, "2.2")], outputEPCList=[x.new_frame],
            bizLocation=_loc(COMPONENTS))),
    ]
    out.append(eol)
    return out


def steps(seed: int = 1) -> list[Step]:
    """All steps in order: (member name, kind, body)."""
    return [s for ph in phases(seed) for s in ph]


class _SeededBytes:
    """Deterministic bytes for salts and sealing ephemerals (same seed, same chain)."""

    def __init__(self, seed: int) -> None:
        self.state = sha256(f"partledger/ebike/{seed}/rand".encode())

    def __call__(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            self.state = sha256(self.state)
            out += self.state
        return out[:n]


def consortium(seed: int = 1) -> Any:
    """The scenario's DevConsortium (4 validators + the certifier)."""
    from ledger._chain import DEV_GENESIS_TIME_MS, DevConsortium, DevMember
    from ledger._genesis import Genesis, Member

    members = [DevMember(name, org_key(name, seed), node_key(name, seed), roles)
               for name, roles, _ in MEMBERS]
    genesis = Genesis.create(
        chain_name="ebike-demo", genesis_time_ms=DEV_GENESIS_TIME_MS,
        members=[Member(name=m.name, org_key=m.org.public, node_key=m.node.public,
                        addresses=(f"/ip4/127.0.0.1/tcp/{7200 + i}",), roles=m.roles)
                 for i, m in enumerate(members)])
    return DevConsortium(genesis, tuple(members))


def signing_keys(seed: int = 1) -> dict[str, SigningKey]:
    """Org keys of every organisation acting in the scenario (genesis members and the fleet)."""
    keys = {name: org_key(name, seed) for name, _, _ in MEMBERS}
    keys[FLEET] = org_key(FLEET, seed)
    return keys


def summary(seed: int = 1) -> dict[str, Any]:
    x = ids()
    return {"ebikes": x.ebikes, "defective_cell_lot": x.defective_cell_lot,
            "recycled_aluminium_lot": x.recycled_lot, "new_frame": x.new_frame,
            "affected_ebikes": x.affected_ebikes, "cell_lots": x.cell_lots, "packs": x.packs,
            "frames": x.frames, "end_of_life_ebike": x.ebikes[0],
            "members": [m for m, _, _ in MEMBERS] + [FLEET]}


def build(out: Any, seed: int = 1, *, progress: Any = None) -> dict[str, Any]:
    """Write the scenario as a sealed dev chain at `out` (a node home); returns `summary()`
    plus the chain's figures.

    Raises:
        ValidationError: a step was rejected (a bug in the scenario or the state machine).
    """
    from ledger._chain import build_dev_chain, default_application
    from ledger.errors import ValidationError

    cons = consortium(seed)
    keys = signing_keys(seed)
    batches = [[(keys[m], kind, body) for m, kind, body in ph] for ph in phases(seed)]
    res = build_dev_chain(out, cons, default_application(), batches, progress=progress)
    if res.rejected:
        raise ValidationError(f"the e-bike scenario had {res.rejected} rejected steps",
                              code="scenario_rejected")
    _write_fleet_key(out, keys[FLEET])
    return {**summary(seed), "home": str(res.home), "chain_id": res.chain_id.hex(),
            "height": res.height, "txs": res.txs, "state_root": res.state_root.hex()}


def _write_fleet_key(out: Any, key: SigningKey) -> None:
    from pathlib import Path

    from ledger._home import make_private_dir
    from ledger._keyfile import write_key_file

    d = Path(out) / "consortium" / FLEET
    make_private_dir(d)
    write_key_file(d / "org.key", key, label="org")


def iter_steps_with_keys(seed: int = 1) -> Iterator[tuple[SigningKey, str, dict[str, Any]]]:
    keys = signing_keys(seed)
    for m, kind, body in steps(seed):
        yield keys[m], kind, body
