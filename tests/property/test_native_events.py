"""The native ObjectEvent executor gives exactly the reference's answer, or declines.

`ProvenanceApp.execute_native` may answer a block only when the reference (`execute_reference`)
accepts every transaction of it, and then with the reference's write set, byte for byte.
Hypothesis builds short chains of blocks (1-30 transactions each) on a consortium of three
writing organisations with GS1 company prefix claims, on top of a state that already holds
objects in every condition (decommissioned, destroyed, in custody of another org, inside a
container, with a passport and an attestation, first recorded as a Digital Link, 31 and 40
events long). Blocks come in three modes:

* clean: only the native subset (ObjectEvent; sgtin URNs, including other spellings of one
  key, and private URIs; CBV or private vocabulary; times with 0, 3 or 6 fraction digits),
  chosen from a model of the state so that the reference accepts them;
* hot: every transaction names one object, so its event list spills to `xe/` keys;
* messy: about half the transactions carry one mutation (bad nonces, strangers, duplicate or
  missing eventIDs, unsupported or null fields, odd times and offsets, Digital Links and other
  identifier forms, objects of another org or out of service, foreign prefixes, other kinds).

For every block: a native answer equals the reference's and accepts everything; a clean or hot
block the reference accepts whole is answered natively (when the extension is loaded); and
`execute` (native runs cut out of the block) equals the reference. The reference's write set
is applied and the chain goes on.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ledger import BlockContext, Execution, Transaction, _accel, _native_py, decode, sha256
from ledger._crypto import SigningKey
from ledger._memstate import MemState
from ledger.provenance import ProvenanceApp, id_key, make_genesis
from ledger.provenance import _keys as K
from ledger.provenance._ids import company_digits


def native_loaded() -> bool:
    """The Rust extension is the backend the app uses (not PARTLEDGER_NATIVE=0)."""
    return _accel.backend is not _native_py


MEMBERS = [("a", ("validator", "member")), ("b", ("member",)), ("c", ("recycler",)),
           ("d", ("certifier",))]
GENESIS, KEYS = make_genesis(MEMBERS, seed=b"native-events")
CHAIN = GENESIS.chain_id
T0 = GENESIS.genesis_time_ms
A1 = SigningKey(sha256(b"native-events/agent/a1"))
B1 = SigningKey(sha256(b"native-events/agent/b1"))
AX = SigningKey(sha256(b"native-events/agent/ax"))        # deactivated agent of a
STRANGER = SigningKey(sha256(b"native-events/stranger"))  # no agent at all
#: (org, key) of the agents allowed to write events
WRITERS = [("a", KEYS["a"]), ("a", A1), ("b", KEYS["b"]), ("b", B1), ("c", KEYS["c"])]
CLAIMS = {"4012345": "a", "5012345": "b", "60123456": "c", "4711": "c"}

SGTIN_A = "urn:epc:id:sgtin:4012345.011111."
SER = [f"{SGTIN_A}s{i}" for i in range(7)]
SGTIN_B = "urn:epc:id:sgtin:5012345.022222."
SSCC = "urn:epc:id:sscc:4012345.0000000001"
AI_EXISTING = "414/4012345000:a"                           # a private URI of a, see AI_LIKE
HOT_NEAR, HOT_SPILLED = "ex:hot/near", "ex:hot/spilled"   # 31 and 40 events after setup
DL_FIRST = "https://id.gs1.org/01/04012345111118/21/dl1"   # recorded as a Digital Link ...
DL_AS_URN = SGTIN_A + "dl1"                                # ... and named as a URN


# -- the consortium and its starting state ------------------------------------------------------

def _body(eid: str, action: str, epcs: list[str], **kw: Any) -> dict[str, Any]:
    return {"type": "ObjectEvent", "eventID": eid, "eventTime": "2025-03-01T10:00:00Z",
            "eventTimeZoneOffset": "+01:00", "action": action, "epcList": epcs, **kw}


@functools.cache
def _setup(index: bool) -> tuple[dict[bytes, bytes], int]:
    """The state after the setup blocks (all accepted, run by the reference) and its height."""
    app = ProvenanceApp(index=index)
    state = MemState()
    state.apply(app.genesis_writes(GENESIS))
    nonces: dict[bytes, int] = {}
    height = 0

    def tx(key: SigningKey, kind: str, body: dict[str, Any]) -> Transaction:
        n = nonces.get(key.public, 0)
        nonces[key.public] = n + 1
        return Transaction.create(key, chain=CHAIN, kind=kind, body=body, nonce=n)

    def block(txs: list[Transaction]) -> None:
        nonlocal height
        height += 1
        ctx = BlockContext(chain=CHAIN, height=height, time_ms=T0 + 1000 * height,
                           proposer=b"\x00" * 32)
        ex = app.execute_reference(state, ctx, txs)
        assert ex.all_ok, [(r.code, r.reason) for r in ex.results if not r.ok]
        state.apply(ex.writes)

    ka, kb, kc, kd = KEYS["a"], KEYS["b"], KEYS["c"], KEYS["d"]
    block([tx(KEYS[org], "PrefixClaim", {"prefix": p}) for p, org in CLAIMS.items()]
          + [tx(ka, "AgentAdd", {"key": A1.public}), tx(ka, "AgentAdd", {"key": AX.public}),
             tx(kb, "AgentAdd", {"key": B1.public})])
    block([tx(ka, "AgentSetActive", {"key": AX.public, "active": False})])
    block([tx(ka, "ObjectEvent", _body("urn:uuid:setup-1", "ADD", SER[:7],
                                       bizStep="commissioning")),
           tx(kb, "ObjectEvent", _body("urn:uuid:setup-2", "ADD",
                                       [SGTIN_B + "b1", SGTIN_B + "b2", SGTIN_B + "b3"])),
           tx(kc, "ObjectEvent", _body("urn:uuid:setup-3", "ADD",
                                       ["urn:epc:id:sgtin:60123456.01111.c1"])),
           tx(ka, "ObjectEvent", _body("urn:uuid:setup-4", "ADD",
                                       ["ex:part/a1", AI_EXISTING, DL_FIRST, SSCC,
                                        HOT_NEAR, HOT_SPILLED],
                                       bizLocation={"id": "urn:epc:id:sgln:4012345.00001.0"}))])
    block([tx(ka, "ObjectEvent", _body("urn:uuid:setup-5", "DELETE", [SER[5]],
                                       bizStep="decommissioning")),
           tx(ka, "ObjectEvent", _body("urn:uuid:setup-6", "OBSERVE", [SER[6]],
                                       bizStep="destroying")),
           tx(kb, "ObjectEvent", _body("urn:uuid:setup-7", "DELETE", [SGTIN_B + "b3"],
                                       disposition="destroyed")),
           tx(ka, "CustodyPropose", {"proposalId": "p1", "epcs": [SER[3]], "role": "custodian",
                                     "to": "b"}),
           tx(ka, "CustodyPropose", {"proposalId": "p2", "epcs": [SER[4]], "role": "both",
                                     "to": "c"}),
           tx(ka, "AggregationEvent", {
               "eventID": "urn:uuid:setup-8", "eventTime": "2025-03-01T11:00:00Z",
               "eventTimeZoneOffset": "+01:00", "action": "ADD", "parentID": SSCC,
               "childEPCs": [SER[2]]}),
           tx(ka, "PassportIssue", {"passportId": "pp1", "subject": SER[1], "attributes": []}),
           tx(kd, "AttestationIssue", {"certId": "cert1", "subject": SER[1],
                                       "standard": "ISO 9001"})])
    block([tx(kb, "CustodyAnswer", {"proposalId": "p1", "response": "accept"}),
           tx(kc, "CustodyAnswer", {"proposalId": "p2", "response": "accept"})])
    block([tx(ka, "ObjectEvent", _body(f"urn:uuid:setup-near-{i}", "OBSERVE", [HOT_NEAR]))
           for i in range(30)])
    block([tx(ka, "ObjectEvent", _body(f"urn:uuid:setup-hot-{i}", "OBSERVE", [HOT_SPILLED]))
           for i in range(39)])
    return state.items(), height


# -- identifiers, times, vocabulary ---------------------------------------------------------------

SERIALS = ["1", "2", "3", "x", "序列", "é/1", "\U0001f642", "", "a" + "ü" * 479]
#: fresh identifiers of the native subset ({s}: a serial); who may introduce them follows from
#: the prefix claims (`_may_introduce`)
FRESH = [
    SGTIN_A + "{s}", "urn:epc:id:sgtin:40123.04511111.{s}",      # one key, two spellings
    "urn:epc:id:sgtin:.0401234511111.{s}", "urn:epc:id:sgtin:401234512345.0.{s}",
    SGTIN_B + "{s}", "urn:epc:id:sgtin:60123456.01111.{s}", "urn:epc:id:sgtin:4711000.033333.{s}",
    "urn:epc:id:sgtin:7012345.044444.{s}",                     # unclaimed prefix
    "ex:part/{s}", "ex:ünï/{s}", "urn:example:obj:{s}",
    "HTTPS://id.gs1.org/01/04012345111118/21/{s}",             # private: case-sensitive scheme
]
#: private URIs whose first segment is a GS1 application identifier: the reference keys them by
#: their text but still reads a company prefix from them (`_ids.company_digits`), so the claims
#: apply; the native path may decline them (mutation `ai_like_id`, `_covered`)
AI_LIKE = ["414/{p}000:{n}", "8004/{p}:{n}", "417/{p}:{n}", "253/{p}/x:{n}", "00/0{p}:{n}"]


def _covered(uri: str) -> bool:
    """Whether the native path must take an accepted event naming `uri`."""
    head = uri.split("/", 1)[0]
    return not (head.isdigit() and "/" in uri)


#: objects of the starting state, named in the native subset
EXISTING = [*SER, SGTIN_B + "b1", SGTIN_B + "b2", SGTIN_B + "b3",
            "urn:epc:id:sgtin:60123456.01111.c1", "ex:part/a1", DL_AS_URN,
            "urn:epc:id:sgtin:40123.04511111.s0", HOT_NEAR, HOT_SPILLED]
N_PICKS = len(FRESH) * len(SERIALS) + len(EXISTING)


def _candidate(i: int) -> str:
    if i < len(EXISTING):
        return EXISTING[i]
    t, s = divmod(i - len(EXISTING), len(SERIALS))
    return FRESH[t].format(s=SERIALS[s])


CLEAN_TZ = ["+00:00", "-00:00", "+02:00", "-05:30", "+14:00", "-14:00", "+13:59", "-09:45"]
SPECIAL_TIMES = [
    "2024-02-29T12:00:00Z", "2000-02-29T23:59:59.999+14:00", "1900-03-01T00:00:00-14:00",
    "1987-05-19T22:13:51.517Z",         # float ms: int(seconds * 1000) gives ...516
    "1987-05-19T22:13:51.517000Z", "1969-12-31T23:59:59.999500Z",   # truncates to 0, not -1
    "1969-12-31T23:59:59.999Z", "1970-01-01T00:00:00.000001+00:30", "2025-03-01T10:00:00Z",
    "2025-03-01T10:00:00.000Z", "2025-03-01T10:00:00.123456+02:00", "2099-12-31T23:59:59-00:00",
]
ODD_TIMES: list[Any] = [
    "2025-02-30T10:00:00Z", "2025-03-01T10:00:00", "2025-03-01T10:00:00.5Z",
    "2023-02-29T00:00:00Z", "2025-03-01T10:00:00.1234567Z", "2025-03-01T10:00Z",
    "20250301T100000Z", "2025-W09-6T10:00:00Z", "2025-03-01 10:00:00Z", "2025-03-01T10:00:00,5Z",
    "2025-03-01T10:00:00+23:59", "2025-03-01T10:00:00+02", "2025-03-01T24:00:00Z",
    "2025-03-01T10:00:00z", "1969-12-31T23:59:59.9995Z", "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999-14:00", "\uff12\uff10\uff12\uff15-03-01T10:00:00Z",
    "2025-03-01T10:00:00.000000000Z", "2025-03-01T10:00:00+02:00:30", "", 1740823200000, None,
    "2025-03-01T10:00:00Z" + " " * 50,
]
ODD_TZ: list[Any] = ["+14:30", "-14:01", "+2:00", "Z", "+02:00:00", "", None, 2, "+24:00",
                     "\u221202:00", "+0200"]
CLEAN_STEPS = [None, "commissioning", "shipping", "receiving", "destroying", "ex:step/1",
               "https://example.com/steps/pack", "https://ns.gs1.org/voc/Bizstep-shipping"]
CLEAN_DISPS = [None, "active", "in_transit", "destroyed", "damaged", "ex:disp", "urn:x:disp:é"]
CLEAN_LOCS = [None, {"id": "urn:epc:id:sgln:4012345.00001.0"}, {"id": "ex:loc/1"},
              {"id": "https://id.gs1.org/414/4012345000016"}, {"id": "ex:ḷöç/" + "z" * 490}]
ODD_VOCAB: list[Any] = ["urn:epcglobal:cbv:bizstep:shipping", "http://ns.gs1.org/cbv/BizStep-x",
                        "https://ns.gs1.org/cbv/Disp-active", "Shipping", "", 5, ["shipping"],
                        "destroyed", "destroying", "commissioning "]
ODD_LOCS: list[Any] = [{"id": "nocolon"}, "ex:loc", {"id": "ex:l", "ex:ext": 1}, {},
                       {"id": None}, {"id": "x:" + "y" * 511}, [{"id": "ex:l"}]]
ODD_IDS: list[Any] = [
    "https://id.gs1.org/01/04012345111118/21/s1", "https://id.gs1.org/01/04012345111118/21/new",
    "http://id.gs1.org/01/05012345222229/21/b1", "https://example.com/01/07012345444448/21/9",
    "http://example.com/thing", "urn:epc:id:sscc:4012345.0000000002",
    "urn:epc:id:sgtin:4012345.011111.a%41", "urn:epc:id:sgtin:4012345.011111.a.b",
    "urn:epc:id:sgtin:4012345.11111.9", "01/04012345111118:lot", "01/04012345111118/21/z:1",
    "urn:epc:class:lgtin:4012345.012345.L9", "urn:epc:idpat:sgtin:4012345.011111.*", "nocolon",
    "", 5, None, ["ex:a"], "x:" + "é" * 511, "x:" + "é" * 510, "ex:nul\x00byte",
]
EXTRA_FIELDS: list[tuple[str, Any]] = [
    ("quantityList", [{"epcClass": "urn:epc:class:lgtin:4012345.012345.L1", "quantity": 5}]),
    ("ilmd", {"ex:lot": "L1"}), ("ex:foo", "bar"), ("ex:foo", None),
    ("errorDeclaration", {"declarationTime": "2025-03-01T10:00:00Z", "reason": "incorrect_data"}),
    ("persistentDisposition", {"set": ["completeness_verified"]}), ("sensorElementList", []),
    ("bizTransactionList", [{"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:4012345:1"}]),
    ("certificationInfo", "ex:cert"), ("recordTime", "2025-03-01T10:00:00Z"),
    ("@context", "https://ref.gs1.org/standards/epcis/epcis-context.jsonld"),
    ("sourceList", [{"type": "owning_party", "source": "urn:epc:id:pgln:4012345.00000"}]),
]
NULLABLE = ["bizStep", "disposition", "bizLocation", "readPoint", "eventID", "type", "epcList",
            "action", "eventTimeZoneOffset", "eventTime", "quantityList", "errorDeclaration",
            "persistentDisposition", "ilmd", "sensorElementList"]
MUTATIONS = ["nonce_ahead", "nonce_replay", "unknown_signer", "inactive_agent", "no_permission",
             "wrong_chain", "dup_eid", "no_eid", "bad_eid", "null_field", "extra_field",
             "odd_time", "odd_tz", "odd_vocab", "odd_loc", "odd_id", "foreign_id", "not_mine",
             "inactive_id", "recommission", "dup_in_list", "empty_list", "type_mismatch",
             "bad_action", "other_kind", "many_ids", "ai_like_id"]


def _event_time(special: int, sec: int, frac_kind: int, frac: int, off: int) -> str:
    if special < len(SPECIAL_TIMES):
        return SPECIAL_TIMES[special]
    text = (datetime(1900, 1, 1) + timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%S")
    if frac_kind == 1:
        text += f".{frac % 1000:03d}"
    elif frac_kind == 2:
        text += f".{frac:06d}"
    tz = CLEAN_TZ[off]
    return text + ("Z" if tz == "+00:00" and frac % 2 == 0 else tz)


@dataclass(frozen=True)
class Plan:
    """One transaction, as drawn; `_Builder.tx` turns it into a signed transaction."""

    who: int
    action: str
    picks: tuple[int, ...]
    time: tuple[int, int, int, int, int]
    tz: int
    step: int
    disp: int
    loc: int
    read_point: int
    typed: bool
    eid_style: int
    mutation: int
    arg: int


plans = st.builds(
    Plan, who=st.integers(0, len(WRITERS) - 1),
    action=st.sampled_from(["ADD", "OBSERVE", "DELETE"]),
    picks=st.lists(st.integers(0, N_PICKS - 1), min_size=1, max_size=3).map(tuple),
    time=st.tuples(st.integers(0, 3 * len(SPECIAL_TIMES)), st.integers(0, 200 * 365 * 86400),
                   st.integers(0, 2), st.integers(0, 999_999), st.integers(0, len(CLEAN_TZ) - 1)),
    tz=st.integers(0, len(CLEAN_TZ) - 1), step=st.integers(0, len(CLEAN_STEPS) - 1),
    disp=st.integers(0, len(CLEAN_DISPS) - 1), loc=st.integers(0, len(CLEAN_LOCS) - 1),
    read_point=st.integers(0, len(CLEAN_LOCS) - 1), typed=st.booleans(),
    eid_style=st.integers(0, 3),
    mutation=st.integers(0, 2 * len(MUTATIONS)), arg=st.integers(0, 1000))
block_plans = st.integers(1, 30).flatmap(lambda n: st.lists(plans, min_size=n, max_size=n))
blocks = st.lists(st.tuples(st.sampled_from(["clean", "hot", "messy", "one_bad"]), block_plans),
                  min_size=1, max_size=4)


@dataclass
class _Obj:
    s: str
    poss: frozenset[str]


class _Builder:
    """Signs planned transactions against a model of the state (objects, nonces, eventIDs),
    kept in step with the blocks it predicts will be accepted."""

    def __init__(self, state: MemState) -> None:
        self.state = state
        self.eids = ["urn:uuid:setup-1", "urn:uuid:setup-8", "urn:uuid:setup-hot-38"]
        self.count = 0
        self.refresh()

    def refresh(self) -> None:
        """Read the model back from the state (after each block)."""
        self.objs: dict[str, _Obj] = {}
        for k, v in self.state.iter_prefix(b"obj/"):
            o = decode(v)
            poss = o.get("hold", ()) if o["c"] else (o["cus"], o["own"])
            self.objs[k[4:].decode()] = _Obj(o["s"], frozenset(poss))
        self.nonces: dict[bytes, int] = {}
        for _, key in [*WRITERS, ("a", AX), ("d", KEYS["d"])]:
            raw = self.state.get(K.nonce(key.public))
            self.nonces[key.public] = 0 if raw is None else decode(raw) + 1

    def _may_introduce(self, org: str, key: str) -> bool:
        d = company_digits(key) or ""
        return not any(d.startswith(p) and owner != org for p, owner in CLAIMS.items())

    def eligible(self, org: str, action: str, uri: str) -> bool:
        key = id_key(uri)
        o = self.objs.get(key)
        if o is None:
            return self._may_introduce(org, key)
        return action != "ADD" and o.s == "active" and org in o.poss

    def pick(self, org: str, action: str, start: int, taken: list[str]) -> str:
        for k in range(N_PICKS):
            uri = _candidate((start + k) % N_PICKS)
            if uri not in taken and len(uri) <= 512 and self.eligible(org, action, uri):
                return uri
        self.count += 1
        return f"ex:fallback/{self.count}"

    def fresh_eid(self, style: int) -> str:
        self.count += 1
        n = self.count
        eid = [f"urn:uuid:native-{n}", f"urn:ex:événement:{n}", f"https://example.com/ev/{n}",
               (f"ex:{n}:" + "ü" * 512)[:512]][style]
        self.eids.append(eid)
        return eid

    def hot_target(self, pick: int) -> tuple[str, bool]:
        """The object a hot block names in every transaction (new: commission it first)."""
        for uri in (HOT_SPILLED, HOT_NEAR) if pick % 2 else (HOT_NEAR, HOT_SPILLED):
            o = self.objs.get(id_key(uri))
            if o is not None and o.s == "active" and "a" in o.poss:
                return uri, False
        self.count += 1
        return f"ex:hot/{self.count}", True

    def tx(self, p: Plan, mutation: str | None, hot: str | None,
           hot_new: bool) -> tuple[Transaction, bool]:
        """The transaction of `p` (changed by `mutation`), and whether it is in the subset the
        native path must take."""
        org, key = WRITERS[p.who]
        action = p.action
        taken: list[str] = []
        if hot is not None:
            org, key = WRITERS[p.who % 2]        # agents of a
            action = "ADD" if hot_new else "OBSERVE"
            taken.append(hot)
        for start in p.picks[: 3 - len(taken)]:
            taken.append(self.pick(org, action, start, taken))
        body: dict[str, Any] = {"eventID": self.fresh_eid(p.eid_style),
                                "eventTime": _event_time(*p.time),
                                "eventTimeZoneOffset": CLEAN_TZ[p.tz], "action": action,
                                "epcList": taken}
        if p.typed:
            body["type"] = "ObjectEvent"
        step, disp = CLEAN_STEPS[p.step], CLEAN_DISPS[p.disp]
        if hot is not None and (step == "destroying" or disp == "destroyed"):
            step = disp = None
        for field, value in (("bizStep", step), ("disposition", disp),
                             ("bizLocation", CLEAN_LOCS[p.loc]),
                             ("readPoint", CLEAN_LOCS[p.read_point])):
            if value is not None:
                body[field] = value
        kind, chain, nonce = "ObjectEvent", CHAIN, self.nonces[key.public]
        if mutation is None:
            self.nonces[key.public] += 1
            for uri in taken:
                k = id_key(uri)
                s = "decommissioned" if action == "DELETE" else "active"
                if step == "destroying" or disp == "destroyed":
                    s = "destroyed"
                self.objs[k] = _Obj(s, self.objs[k].poss if k in self.objs else frozenset({org}))
            covered = all(_covered(u) for u in taken)
            return Transaction.create(key, chain=chain, kind=kind, body=body,
                                      nonce=nonce), covered
        arg = p.arg
        if mutation == "nonce_ahead":
            nonce += 1 + arg % 2
        elif mutation == "nonce_replay":
            nonce = max(0, nonce - 1 - arg % 2)
        elif mutation == "unknown_signer":
            key, nonce = STRANGER, 0
        elif mutation == "inactive_agent":
            key, nonce = AX, self.nonces[AX.public]
        elif mutation == "no_permission":
            key, nonce = KEYS["d"], self.nonces[KEYS["d"].public]
        elif mutation == "wrong_chain":
            chain = b"\x01" * 32
        elif mutation == "dup_eid":
            body["eventID"] = self.eids[arg % len(self.eids)]
        elif mutation == "no_eid":
            del body["eventID"]
        elif mutation == "bad_eid":
            body["eventID"] = ["nocolon", "", "x:" + "a" * 511, 5, "x:" + "é" * 510][arg % 5]
        elif mutation == "null_field":
            body[NULLABLE[arg % len(NULLABLE)]] = None
        elif mutation == "extra_field":
            field, value = EXTRA_FIELDS[arg % len(EXTRA_FIELDS)]
            body[field] = value
        elif mutation == "odd_time":
            body["eventTime"] = ODD_TIMES[arg % len(ODD_TIMES)]
        elif mutation == "odd_tz":
            body["eventTimeZoneOffset"] = ODD_TZ[arg % len(ODD_TZ)]
        elif mutation == "odd_vocab":
            body[("bizStep", "disposition")[arg % 2]] = ODD_VOCAB[arg // 2 % len(ODD_VOCAB)]
        elif mutation == "odd_loc":
            body[("bizLocation", "readPoint")[arg % 2]] = ODD_LOCS[arg // 2 % len(ODD_LOCS)]
        elif mutation == "odd_id":
            taken.insert(arg % (len(taken) + 1), ODD_IDS[arg % len(ODD_IDS)])
        elif mutation == "foreign_id":
            other = {"a": "b", "b": "c", "c": "a"}[org]
            prefix = next(p for p, o in CLAIMS.items() if o == other)
            taken.append(f"414/{prefix}{arg}:x" if arg % 2 else
                         f"urn:epc:id:sgtin:{prefix}.{'0' * (13 - len(prefix))}.f{arg}")
        elif mutation in ("not_mine", "inactive_id", "recommission"):
            bad = [u for u in EXISTING if (o := self.objs.get(id_key(u))) is not None and (
                (mutation == "not_mine" and o.s == "active" and org not in o.poss)
                or (mutation == "inactive_id" and o.s != "active")
                or (mutation == "recommission" and o.s == "active" and org in o.poss))]
            if mutation == "recommission":
                body["action"] = "ADD"
            if bad:
                taken.append(bad[arg % len(bad)])
        elif mutation == "dup_in_list":
            taken.append(taken[arg % len(taken)])
        elif mutation == "empty_list":
            taken.clear()
        elif mutation == "type_mismatch":
            body["type"] = ["AggregationEvent", "objectevent", "ex:ObjectEvent"][arg % 3]
        elif mutation == "bad_action":
            body["action"] = ["add", "UPDATE", 1][arg % 3]
        elif mutation == "other_kind":
            kind = ["AggregationEvent", "TransactionEvent", "AssociationEvent"][arg % 3]
            body["type"] = kind
            if kind == "AggregationEvent":
                body["action"] = "OBSERVE"
                body["childEPCs"] = body.pop("epcList")
            elif kind == "TransactionEvent":
                body["bizTransactionList"] = [{"type": "po", "bizTransaction": "urn:ex:po:1"}]
            else:
                body["parentID"] = body["epcList"][0]
                body["childEPCs"] = body.pop("epcList")[1:] or [f"ex:child/{arg}"]
        elif mutation == "ai_like_id":
            if arg % 5 == 0:
                taken.append(AI_EXISTING)
            else:
                prefix = list(CLAIMS)[arg % len(CLAIMS)]
                taken.append(AI_LIKE[arg // 5 % len(AI_LIKE)].format(p=prefix, n=arg))
        elif mutation == "many_ids":
            taken.extend(f"ex:many/{arg}/{i}" for i in range(40))
        return Transaction.create(key, chain=chain, kind=kind, body=body, nonce=nonce), False


# -- the check ------------------------------------------------------------------------------------

def _show(v: bytes | None) -> Any:
    return None if v is None else decode(v)


def _diff(nat: Execution, ref: Execution) -> str:
    for k in sorted(set(nat.writes) | set(ref.writes)):
        a, b = nat.writes.get(k, b"<absent>"), ref.writes.get(k, b"<absent>")
        if a != b:
            return (f"first differing key {k!r}:\n native    {a!r}\n reference {b!r}\n"
                    f" (decoded: {_show(a) if a != b'<absent>' else a!r} vs "
                    f"{_show(b) if b != b'<absent>' else b!r})")
    return "write sets equal"


#: big examples (up to 120 transactions, each drawn field by field) are the point here
SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large]


def _describe(txs: list[Transaction]) -> str:
    return "; ".join(f"{t.kind} {dict(t.body)!r}" for t in txs)[:3000]


def _run(index: bool, chain: list[tuple[str, list[Plan]]]) -> None:
    items, height = _setup(index)
    state = MemState(items)
    app = ProvenanceApp(index=index)
    b = _Builder(state)
    for mode, block in chain:
        height += 1
        ctx = BlockContext(chain=CHAIN, height=height, time_ms=T0 + 1000 * height,
                           proposer=b"\x00" * 32)
        hot, hot_new = b.hot_target(block[0].arg) if mode == "hot" else (None, False)
        bad = block[0].arg % len(block)
        txs, supported = [], True
        for i, p in enumerate(block):
            mutation = None
            if mode == "messy" and p.mutation < len(MUTATIONS):
                mutation = MUTATIONS[p.mutation]
            elif mode == "one_bad" and i == bad:
                mutation = MUTATIONS[p.mutation % len(MUTATIONS)]
            tx, in_subset = b.tx(p, mutation, hot, hot_new and i == 0)
            txs.append(tx)
            supported &= in_subset
        ref = app.execute_reference(state, ctx, txs)
        nat = app.execute_native(state, ctx, txs)
        codes = [(r.code, r.reason) for r in ref.results if not r.ok]
        if nat is not None:
            assert native_loaded(), "execute_native answered without the extension"
            assert ref.all_ok, f"native accepted a block the reference rejects in part: {codes}"
            assert nat.results == ref.results
            assert nat.writes == ref.writes, _diff(nat, ref)
        elif native_loaded() and supported and ref.all_ok and index:
            pytest.fail(f"native declined a {mode} block of {len(txs)} transactions of its "
                        f"subset that the reference accepts whole: {_describe(txs)}")
        event(f"{mode} block: {'native' if nat is not None else 'declined'}"
              f"{', all accepted' if ref.all_ok else ''}")
        if mode == "one_bad":
            event(f"one_bad {MUTATIONS[block[bad].mutation % len(MUTATIONS)]}: "
                  f"{ref.results[bad].code}")
        event(f"block size {'1-9' if len(txs) < 10 else '10-30'}")
        if mode in ("clean", "hot") and not ref.all_ok:
            event(f"{mode} rejected: {codes[0][0]}")
        if any(k.startswith(b"xe/") for k in ref.writes):
            event("event list spilled to xe/")
        full = app.execute(state, ctx, txs)
        assert full.results == ref.results
        assert full.writes == ref.writes, _diff(full, ref)
        state.apply(ref.writes)
        b.refresh()


@settings(max_examples=300, deadline=None, suppress_health_check=SLOW)
@given(chain=blocks)
def test_native_events_equal_reference_or_decline(chain: list[tuple[str, list[Plan]]]) -> None:
    _run(True, chain)


@settings(max_examples=50, deadline=None, suppress_health_check=SLOW)
@given(chain=blocks)
def test_native_events_without_indexes(chain: list[tuple[str, list[Plan]]]) -> None:
    """`ProvenanceApp(index=False)` (benchmarks): no `x`/`xe/` entries; parity only."""
    _run(False, chain)


def test_setup_state_has_what_the_generator_relies_on() -> None:
    """The starting state holds the object conditions the blocks above are built on."""
    items, _ = _setup(True)

    def obj(uri: str) -> dict[str, Any]:
        out: dict[str, Any] = decode(items[K.obj(id_key(uri))])
        return out

    assert obj(SER[5])["s"] == "decommissioned" and obj(SER[6])["s"] == "destroyed"
    assert obj(SGTIN_B + "b3")["s"] == "destroyed"
    assert (obj(SER[3])["cus"], obj(SER[3])["own"]) == ("b", "a")
    assert (obj(SER[4])["cus"], obj(SER[4])["own"], obj(SER[4])["by"]) == ("c", "c", "a")
    assert obj(SER[2])["in"] == id_key(SSCC) and obj(SER[2])["g"]
    assert obj(SER[1])["pp"] == "pp1" and obj(SER[1])["att"]
    assert obj(DL_AS_URN)["id"] == DL_FIRST
    assert len(obj(HOT_NEAR)["x"]) == 31 and "xs" not in obj(HOT_NEAR)
    assert len(obj(HOT_SPILLED)["x"]) == 32 and obj(HOT_SPILLED)["xs"]
    assert sum(k.startswith(K.obj_event_prefix(HOT_SPILLED)) for k in items) == 8
    assert decode(items[K.PREFIXES]) == CLAIMS
    assert id_key("urn:epc:id:sgtin:40123.04511111.s0") == id_key(SER[0])
    assert decode(items[K.agent(AX.public)]) == {"org": "a", "active": False}
