"""A seeded generator of realistic, varied and valid provenance transactions.

`synthetic_workload(rng, consortium, n)` yields `(signer_index, kind, body)`: lots are
commissioned and transformed into new lots, serialised parts are made and assembled into products,
packed on pallets, inspected, linked to purchase orders, handed over by proposal and acceptance,
given passports (with a restricted tier sealed to the partner), attested by certifiers and named
in quality investigations. It keeps a model of who holds what, so every transaction it yields is
accepted when applied in order (the chain builder assigns nonces). Everything, including the
sealing randomness, comes from `rng`: the same seed gives the same transactions.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger._crypto import SigningKey
from ledger.provenance._ids import gs1_check_digit
from ledger.provenance._passport import seal_attribute
from ledger.provenance._vocab import PERMISSIONS

BASE_TIME = datetime(2025, 1, 6, 6, 0, tzinfo=UTC)
Signer = int | SigningKey
Step = tuple[Signer, str, dict[str, Any]]


def members_of(consortium: Any) -> list[Any]:
    """Members of a Genesis, or a plain sequence of members (name/roles/org_key objects)."""
    ms = getattr(consortium, "members", consortium)
    return list(ms)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def sgtin(cp: str, item: int, serial: str) -> str:
    iir = "0" + str(item).zfill(12 - len(cp))
    return f"urn:epc:id:sgtin:{cp}.{iir}.{serial}"


def lgtin(cp: str, item: int, lot: str) -> str:
    iir = "0" + str(item).zfill(12 - len(cp))
    return f"urn:epc:class:lgtin:{cp}.{iir}.{lot}"


def sscc(cp: str, n: int) -> str:
    return f"urn:epc:id:sscc:{cp}.0{str(n).zfill(16 - len(cp))}"


def sgln(cp: str, loc: int) -> str:
    return f"urn:epc:id:sgln:{cp}.{str(loc).zfill(12 - len(cp))}.0"


def gln(cp: str, loc: int) -> str:
    body = cp + str(loc).zfill(12 - len(cp))
    return body + gs1_check_digit(body)


@dataclass
class _Actor:
    index: int
    name: str
    cp: str
    lots: list[str] = field(default_factory=list)          # class ids held
    free: list[str] = field(default_factory=list)          # serial items held, top-level
    products: list[str] = field(default_factory=list)      # assembled, no passport yet
    passports: list[str] = field(default_factory=list)
    kids: dict[str, list[str]] = field(default_factory=dict)   # product -> installed parts
    counter: int = 0


class WorkloadModel:
    """The generator's view of the ledger: who holds what (kept in step with what it yields)."""

    def __init__(self, rng: random.Random, consortium: Any) -> None:
        self.rng = rng
        self.members = members_of(consortium)
        self.run = f"{rng.getrandbits(32):08x}"
        used: set[str] = set()
        self.actors: list[_Actor] = []
        self.certifiers: list[int] = []
        for i, m in enumerate(self.members):
            perms: set[str] = set()
            for r in m.roles:
                perms |= PERMISSIONS.get(r, frozenset())
            if "attestation.write" in perms:
                self.certifiers.append(i)
            if "event.write" in perms:
                while True:
                    cp = str(rng.randrange(10**6, 10**7))
                    if not any(cp.startswith(u[:6]) or u.startswith(cp[:6]) for u in used):
                        break
                used.add(cp)
                self.actors.append(_Actor(i, m.name, cp))
        self.t = BASE_TIME
        self.events: list[str] = []

    def tick(self) -> str:
        self.t += timedelta(seconds=self.rng.randrange(20, 400))
        return iso(self.t)

    def eid(self) -> str:
        return "urn:uuid:" + str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def ev(self, typ: str, **fields: Any) -> dict[str, Any]:
        e = {"type": typ, "eventID": self.eid(), "eventTime": self.tick(),
             "eventTimeZoneOffset": "+00:00", **fields}
        self.events.append(e["eventID"])
        return e

    def signer(self, index: int) -> Signer:
        """The member's org key when the consortium carries keys (DevConsortium), else its
        index in the member list."""
        k = getattr(self.members[index], "org", None)
        return k if isinstance(k, SigningKey) else index

    def org_key(self, index: int) -> bytes | None:
        m = self.members[index]
        k = getattr(m, "org", None)
        if isinstance(k, SigningKey):
            return k.public
        pub = getattr(m, "org_key", None)
        return pub if isinstance(pub, bytes) else None

    def rand_bytes(self, n: int) -> bytes:
        return self.rng.getrandbits(8 * n).to_bytes(n, "big")


def synthetic_workload(rng: random.Random, consortium: Any, n_txs: int) -> Iterator[Step]:
    """Yield `n_txs` valid transactions `(signer_index, kind, body)` in application order.

    Args:
        rng: the only source of randomness (seed it for reproducible chains).
        consortium: a Genesis (or a sequence of its members: name, roles, org_key).
        n_txs: how many transactions to yield.
    """
    m = WorkloadModel(rng, consortium)
    if not m.actors:
        raise ValueError("the consortium has no member allowed to write events")
    produced = 0
    for a in m.actors:
        if produced >= n_txs:
            return
        yield m.signer(a.index), "PrefixClaim", {"prefix": a.cp}
        produced += 1
    while produced < n_txs:
        for idx, kind, body in _one(m):
            if produced >= n_txs:
                return
            yield m.signer(idx), kind, body
            produced += 1


def _one(m: WorkloadModel) -> list[tuple[int, str, dict[str, Any]]]:
    rng = m.rng
    a = rng.choice(m.actors)
    a.counter += 1
    n = a.counter
    loc = {"id": sgln(a.cp, rng.randrange(1, 4))}
    r = rng.random()
    if r < 0.14 or not a.lots:
        lot = lgtin(a.cp, rng.randrange(1, 50), f"L{m.run}{n}")
        a.lots.append(lot)
        return [(a.index, "ObjectEvent", m.ev(
            "ObjectEvent", action="ADD", bizStep="commissioning", disposition="active",
            quantityList=[{"epcClass": lot, "quantity": str(rng.randrange(100, 5000)),
                           "uom": "KGM"}],
            bizLocation=loc, readPoint=loc,
            ilmd={"ex:heat": f"H{rng.randrange(10**5)}"},
            **{"@context": [{"ex": "https://example.com/ns/"}]}))]
    if r < 0.28:
        k = min(len(a.lots), rng.randrange(1, 4))
        ins = rng.sample(a.lots[-20:], k)
        out = lgtin(a.cp, rng.randrange(50, 99), f"T{m.run}{n}")
        a.lots.append(out)
        return [(a.index, "TransformationEvent", m.ev(
            "TransformationEvent", bizStep="commissioning", disposition="active",
            inputQuantityList=[{"epcClass": i, "quantity": f"{rng.randrange(1, 900)}.5",
                                "uom": "KGM"} for i in ins],
            outputQuantityList=[{"epcClass": out, "quantity": str(rng.randrange(10, 900)),
                                 "uom": "KGM"}],
            bizLocation=loc, readPoint=loc))]
    if r < 0.44 or len(a.free) < 3:
        item = rng.randrange(100, 400)
        epcs = [sgtin(a.cp, item, f"{m.run}{n}s{j}") for j in range(rng.randrange(1, 6))]
        a.free.extend(epcs)
        fields: dict[str, Any] = {}
        if a.lots:
            fields["ilmd"] = {"ex:lot": rng.choice(a.lots)}
            fields["@context"] = [{"ex": "https://example.com/ns/"}]
        return [(a.index, "ObjectEvent", m.ev(
            "ObjectEvent", action="ADD", bizStep="commissioning", disposition="active",
            epcList=epcs, bizLocation=loc, readPoint=loc, **fields))]
    if r < 0.56:
        k = rng.randrange(2, min(4, len(a.free)) + 1)
        kids = [a.free.pop(rng.randrange(len(a.free))) for _ in range(k)]
        parent = sgtin(a.cp, rng.randrange(500, 600), f"{m.run}{n}p")
        a.products.append(parent)
        a.kids[parent] = kids
        cq = ([{"epcClass": rng.choice(a.lots), "quantity": "0.25", "uom": "KGM"}]
              if a.lots else [])
        body = m.ev("AssociationEvent", action="ADD", bizStep="assembling",
                    disposition="in_progress", parentID=parent, childEPCs=kids,
                    bizLocation=loc, readPoint=loc)
        if cq:
            body["childQuantityList"] = cq
        return [(a.index, "AssociationEvent", body)]
    if r < 0.62:
        k = rng.randrange(1, min(5, len(a.free)) + 1)
        kids = [a.free.pop(rng.randrange(len(a.free))) for _ in range(k)]
        pallet = sscc(a.cp, rng.randrange(10**9) * 1000 + n % 1000)
        a.free.append(pallet)
        return [(a.index, "AggregationEvent", m.ev(
            "AggregationEvent", action="ADD", bizStep="packing", disposition="in_progress",
            parentID=pallet, childEPCs=kids, bizLocation=loc, readPoint=loc))]
    if r < 0.72:
        pool = a.free + a.products
        if not pool:
            return []
        target = rng.choice(pool)
        return [(a.index, "ObjectEvent", m.ev(
            "ObjectEvent", action="OBSERVE", bizStep="inspecting",
            disposition=rng.choice(["conformant", "conformant", "non_conformant"]),
            epcList=[target], bizLocation=loc, readPoint=loc,
            sensorElementList=[{"sensorReport": [{"type": "Temperature",
                                                  "value": rng.randrange(15, 30),
                                                  "uom": "CEL"}]}]))]
    if r < 0.82 and len(m.actors) > 1:
        pool = a.free + a.products
        if not pool:
            return []
        b = rng.choice([x for x in m.actors if x is not a])
        moved = rng.choice(pool)
        (a.free if moved in a.free else a.products).remove(moved)
        b.free.append(moved)
        pid = f"hand-{m.run}-{a.name}-{n}"
        dest = [{"type": "possessing_party", "destination": f"urn:epc:id:pgln:{b.cp}."
                 f"{'0' * (12 - len(b.cp))}"}]
        return [
            (a.index, "ObjectEvent", m.ev("ObjectEvent", action="OBSERVE", bizStep="shipping",
                                          disposition="in_transit", epcList=[moved],
                                          readPoint=loc, destinationList=dest)),
            (a.index, "CustodyPropose", {"proposalId": pid, "epcs": [moved], "role": "both",
                                         "to": b.name}),
            (b.index, "CustodyAnswer", {"proposalId": pid, "response": "accept"}),
            (b.index, "ObjectEvent", m.ev(
                "ObjectEvent", action="OBSERVE", bizStep="receiving",
                disposition="in_progress", epcList=[moved],
                readPoint={"id": sgln(b.cp, 1)}, bizLocation={"id": sgln(b.cp, 1)},
                sourceList=[{"type": "possessing_party",
                             "source": f"urn:epc:id:pgln:{a.cp}.{'0' * (12 - len(a.cp))}"}])),
        ]
    if r < 0.88 and a.products:
        prod = a.products.pop(rng.randrange(len(a.products)))
        a.free.append(prod)
        pid = f"pp-{m.run}-{a.name}-{n}"
        a.passports.append(pid)
        partners = {x.name: pub for x in m.actors
                    if x is not a and (pub := m.org_key(x.index)) is not None}
        attrs: list[dict[str, Any]] = [
            {"path": "manufacturer", "tier": "public", "value": a.name},
            {"path": "carbonFootprint.kgCO2e", "tier": "public",
             "value": f"{rng.randrange(10, 900)}.{rng.randrange(10)}"},
            {"path": "recycledContent.aluminium.share", "tier": "public",
             "value": f"0.{rng.randrange(10, 99)}"},
        ]
        if partners:
            pick = dict(rng.sample(sorted(partners.items()), 1))
            attrs.append(seal_attribute("dismantling.manual", "legit_interest",
                                        {"uri": f"https://docs.example.com/{pid}",
                                         "sha256": m.rand_bytes(32)}, pick,
                                        random_bytes=m.rand_bytes))
        return [(a.index, "PassportIssue", {"passportId": pid, "subject": prod, "level": "item",
                                            "profile": "espr-generic", "attributes": attrs})]
    if r < 0.91 and a.passports:
        pid = rng.choice(a.passports)
        return [(a.index, "PassportUpdate", {"passportId": pid, "attributes": [
            {"path": "stateOfHealth", "tier": "public", "value": f"0.{rng.randrange(70, 99)}"}]})]
    if r < 0.95 and m.certifiers and a.lots:
        c = rng.choice(m.certifiers)
        return [(c, "AttestationIssue", {
            "certId": f"cert-{m.run}-{n}-{a.name}", "subject": rng.choice(a.lots),
            "standard": rng.choice(["ISO 9001", "ASI Performance Standard", "UN 38.3"]),
            "validFrom": "2025-01-01T00:00:00Z", "validTo": "2027-01-01T00:00:00Z",
            "docHash": m.rand_bytes(32)})]
    if r < 0.98:
        pool = a.free + a.products
        if not pool:
            return []
        linked = rng.choice(pool)
        return [(a.index, "TransactionEvent", m.ev(
            "TransactionEvent", action="ADD", bizStep="shipping", epcList=[linked],
            bizTransactionList=[{"type": "po", "bizTransaction":
                                 f"urn:epcglobal:cbv:bt:{gln(a.cp, 1)}:PO{n}"}]))]
    if r < 0.99 and a.products:
        # end of life before sale: take the product apart, parts back to stock
        prod = a.products.pop(rng.randrange(len(a.products)))
        parts = a.kids.pop(prod, [])
        a.free.extend(parts)
        return [
            (a.index, "AssociationEvent", m.ev(
                "AssociationEvent", action="DELETE", bizStep="disassembling", parentID=prod,
                childEPCs=parts, bizLocation=loc)),
            (a.index, "ObjectEvent", m.ev(
                "ObjectEvent", action="DELETE", bizStep="decommissioning", epcList=[prod],
                bizLocation=loc)),
        ]
    pool = a.lots + a.free
    return [(a.index, "QualityNotice", {
        "noticeId": f"qn-{m.run}-{a.name}-{n}", "type": "investigation",
        "affected": [rng.choice(pool)], "severity": "minor",
        "description": "supplier investigation"})]


def workload_list(rng: random.Random, consortium: Sequence[Any] | Any, n: int) -> list[Step]:
    return list(synthetic_workload(rng, consortium, n))
