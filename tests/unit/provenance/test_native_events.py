"""The native ObjectEvent path (`ProvenanceApp.execute_native`) on hand-picked blocks.

Every block runs three ways: `execute_reference` (the definition), `execute_native` (None when
the extension is not loaded or declines; else exactly the reference's answer) and `execute`
(always the reference's answer). tests/property/test_native_events.py generates the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import pytest

from ledger import BlockContext, Execution, Transaction, _accel, _native_py, decode
from ledger._crypto import SigningKey
from ledger.provenance import MemLedger, id_key
from ledger.provenance import _keys as K
from ledger.provenance._app import CAP_EVENTS
from tests.unit.provenance.conftest import OTHER, SER, ok, rejected

Ev = Callable[..., dict[str, Any]]


def native_loaded() -> bool:
    """The Rust extension is the backend the app uses (not PARTLEDGER_NATIVE=0)."""
    return _accel.backend is not _native_py



def _ctx(led: MemLedger) -> BlockContext:
    """The context `MemLedger.execute` gives the next block."""
    return BlockContext(chain=led.genesis.chain_id, height=led.height + 1,
                        time_ms=led.time_ms + 1000, proposer=b"\x00" * 32)


def run(led: MemLedger, txs: Sequence[Transaction], *, native: bool) -> Execution:
    """Run `txs` as the next block on every path, check the paths agree, commit it.

    `native`: the native path must take the block (when the extension is loaded), else it must
    decline it. Returns the reference's execution.
    """
    ctx = _ctx(led)
    ref = led.app.execute_reference(led.state, ctx, txs)
    nat = led.app.execute_native(led.state, ctx, txs)
    if native and native_loaded():
        assert ref.all_ok, [(r.code, r.reason) for r in ref.results]
        assert nat is not None, "the native path declined a block of its subset"
        assert nat.results == ref.results
        assert nat.writes == ref.writes
    else:
        assert nat is None
    full = led.app.execute(led.state, ctx, txs)
    assert full.results == ref.results
    assert full.writes == ref.writes
    committed = led.commit(txs, only_ok=False)
    assert committed.writes == ref.writes
    return ref


def event(led: MemLedger, ev: Ev, who: str, action: str, *epcs: str,
          **kw: Any) -> Transaction:
    return led.sign(who, "ObjectEvent", ev("ObjectEvent", action=action, epcList=list(epcs), **kw))


def obj(led: MemLedger, uri: str) -> dict[str, Any]:
    raw = led.state.get(K.obj(id_key(uri)))
    assert raw is not None, f"{uri} has no record"
    out: dict[str, Any] = decode(raw)
    return out


def get(led: MemLedger, key: bytes) -> Any:
    raw = led.state.get(key)
    return None if raw is None else decode(raw)


def last_event_id(led: MemLedger) -> str:
    """The eventID of the last recorded event."""
    eid: str = get(led, K.seq(get(led, K.SEQ) - 1))
    return eid


# -- taken natively ---------------------------------------------------------------------------

def test_commissioning_block_is_native_and_equals_reference(led: MemLedger, ev: Ev) -> None:
    txs = [event(led, ev, "maker", "ADD", SER + f"c{i}", f"ex:part/c{i}",
                 bizStep="commissioning", disposition="active",
                 bizLocation={"id": "urn:epc:id:sgln:4012345.00001.0"},
                 readPoint={"id": "ex:rp/1"}, eventTime=f"2025-03-01T10:00:0{i}.25{i}+02:00")
           for i in range(6)]
    txs += [event(led, ev, "recy", "OBSERVE", OTHER + "r1", eventTime="2024-02-29T23:59:59Z"),
            event(led, ev, "recy", "DELETE", "urn:example:x:1")]
    ref = run(led, txs, native=True)
    assert ref.all_ok
    eid = txs[2].body["eventID"]
    o = obj(led, SER + "c2")
    assert o == {"id": SER + "c2", "c": False, "s": "active", "by": "maker", "own": "maker",
                 "cus": "maker", "ev": eid, "lev": eid, "t": 1740816002252,
                 "loc": "urn:epc:id:sgln:4012345.00001.0", "disp": "active", "x": [[2, eid]]}
    assert obj(led, "ex:part/c2") == {**o, "id": "ex:part/c2"}
    rec = get(led, K.event(eid))
    assert (rec["k"], rec["org"], rec["seq"], rec["h"]) == ("ObjectEvent", "maker", 2, 1)
    assert rec["b"] == txs[2].body and rec["tx"] == txs[2].tx_id
    assert get(led, K.seq(7)) == txs[7].body["eventID"] and get(led, K.SEQ) == 8
    assert get(led, K.nonce(led.keys["maker"].public)) == 5
    assert obj(led, OTHER + "r1")["own"] == "recy"
    # DELETE of an identifier never seen creates it, decommissioned
    assert obj(led, "urn:example:x:1")["s"] == "decommissioned"


def test_delete_then_add(led: MemLedger, ev: Ev) -> None:
    run(led, [event(led, ev, "maker", "ADD", SER + "d1", SER + "d2")], native=True)
    run(led, [event(led, ev, "maker", "DELETE", SER + "d1", bizStep="decommissioning")],
        native=True)
    assert obj(led, SER + "d1")["s"] == "decommissioned"
    ref = run(led, [event(led, ev, "maker", "ADD", SER + "d1")], native=False)
    rejected(ref.results[0], "inactive_identifier")
    # in one block: the ADD sees the DELETE before it
    ref = run(led, [event(led, ev, "maker", "DELETE", SER + "d2"),
                    event(led, ev, "maker", "ADD", SER + "d2")], native=False)
    ok(ref.results[0])
    rejected(ref.results[1], "inactive_identifier")
    assert obj(led, SER + "d2")["s"] == "decommissioned"
    # destroying beats decommissioning
    run(led, [event(led, ev, "maker", "ADD", SER + "d3"),
              event(led, ev, "maker", "DELETE", SER + "d3", disposition="destroyed")],
        native=True)
    assert obj(led, SER + "d3")["s"] == "destroyed"


@pytest.mark.parametrize("split", [40, 20, 33])
def test_forty_events_on_one_object_spill_to_xe(led: MemLedger, ev: Ev, split: int) -> None:
    uri = SER + "hot"
    txs = [event(led, ev, "maker", "ADD", uri)]
    txs += [event(led, ev, "maker", "OBSERVE", uri, "ex:side/" + str(i % 3)) for i in range(39)]
    run(led, txs[:split], native=True)
    if split < len(txs):
        run(led, txs[split:], native=True)
    o = obj(led, uri)
    eids = [t.body["eventID"] for t in txs]
    assert o["x"] == [[n, eids[n]] for n in range(CAP_EVENTS)]
    assert o["xs"] is True and o["lev"] == eids[-1]
    spilled = {k: decode(v) for k, v in led.state.iter_prefix(K.obj_event_prefix(id_key(uri)))}
    assert spilled == {K.obj_event(id_key(uri), n): eids[n] for n in range(CAP_EVENTS, 40)}
    assert len(obj(led, "ex:side/0")["x"]) == 13 and "xs" not in obj(led, "ex:side/0")


def test_one_object_under_two_urn_spellings(led: MemLedger, ev: Ev) -> None:
    other = "urn:epc:id:sgtin:40123.04511111.tw"       # the key of SER + "tw"
    assert id_key(other) == id_key(SER + "tw")
    run(led, [event(led, ev, "maker", "ADD", SER + "tw", other),
              event(led, ev, "maker", "OBSERVE", other)], native=True)
    o = obj(led, other)
    assert o["id"] == SER + "tw" and len(o["x"]) == 2
    # the Digital Link form names the same object; the native path leaves it to the reference
    dl = "https://id.gs1.org/01/04012345111118/21/tw"
    ref = run(led, [event(led, ev, "maker", "OBSERVE", dl)], native=False)
    ok(ref.results[0])
    assert obj(led, SER + "tw")["lev"] == last_event_id(led)



@pytest.mark.parametrize(("when", "tm"), [
    ("1987-05-19T22:13:51.517Z", 548460831516),        # int(548460831.517 * 1000)
    ("1987-05-19T22:13:51.517000Z", 548460831516),
    ("1969-12-31T23:59:59.999500Z", 0),                # truncated toward zero, not floored
    ("1970-01-01T00:00:00.000001+00:30", -1799999),
    ("2000-02-29T23:59:59.999-14:00", 951919199999),
])
def test_event_time_is_the_reference_float_arithmetic(led: MemLedger, ev: Ev, when: str,
                                                      tm: int) -> None:
    tx = event(led, ev, "maker", "ADD", SER + "t", eventTime=when)
    run(led, [tx], native=True)
    assert get(led, K.event(tx.body["eventID"]))["tm"] == tm
    assert obj(led, SER + "t")["t"] == tm


def test_lengths_count_code_points_not_bytes(led: MemLedger, ev: Ev) -> None:
    long_id = "ex:" + "序" * 509                       # 512 characters, 1530 bytes
    long_eid = "urn:x:" + "é" * 506
    tx = led.sign("maker", "ObjectEvent", {**ev("ObjectEvent", action="ADD", epcList=[long_id]),
                                           "eventID": long_eid})
    run(led, [tx], native=True)
    assert obj(led, long_id)["ev"] == long_eid
    ref = run(led, [event(led, ev, "maker", "ADD", long_id + "序")], native=False)
    rejected(ref.results[0], "bad_identifier")


# -- declined ---------------------------------------------------------------------------------

def _bad_tx(led: MemLedger, ev: Ev, bad: str, first: Transaction) -> Transaction:
    """A transaction the reference rejects with `bad`; not signed by maker (whose nonces the
    good transactions of the block use) unless its nonce is the problem."""
    if bad == "bad_nonce":
        key = led.keys["maker"]
        return Transaction.create(key, chain=led.genesis.chain_id, kind="ObjectEvent",
                                  body=ev("ObjectEvent", action="OBSERVE", epcList=[SER + "b0"]),
                                  nonce=led.nonces[key.public] + 5)
    if bad == "unknown_signer":
        return Transaction.create(SigningKey(b"\x07" * 32), chain=led.genesis.chain_id,
                                  kind="ObjectEvent", nonce=0,
                                  body=ev("ObjectEvent", action="OBSERVE", epcList=[SER + "b0"]))
    if bad == "duplicate_event":
        body = {**ev("ObjectEvent", action="OBSERVE", epcList=["ex:d/1"]),
                "eventID": first.body["eventID"]}
        return led.sign("recy", "ObjectEvent", body)
    if bad == "permission_denied":
        return event(led, ev, "cert", "OBSERVE", "ex:c/1")
    if bad == "not_possessor":
        return event(led, ev, "recy", "OBSERVE", SER + "b0")
    if bad == "already_commissioned":
        return event(led, ev, "recy", "ADD", SER + "b1")
    if bad == "foreign_prefix":
        return event(led, ev, "recy", "ADD", SER + "foreign")
    assert bad == "bad_time"
    return event(led, ev, "recy", "ADD", "ex:b/9", eventTime="2025-02-30T10:00:00Z")


@pytest.mark.parametrize("bad", ["bad_nonce", "unknown_signer", "duplicate_event",
                                 "permission_denied", "not_possessor", "already_commissioned",
                                 "foreign_prefix", "bad_time"])
@pytest.mark.parametrize("where", [0, 5, 9])
def test_block_with_one_rejected_tx_is_declined(led: MemLedger, ev: Ev, bad: str,
                                                where: int) -> None:
    ok(led.submit("maker", "PrefixClaim", {"prefix": "4012345"}))
    first = [event(led, ev, "maker", "ADD", SER + "b0", SER + "b1")]
    run(led, first, native=True)
    good = [event(led, ev, "maker", "OBSERVE", SER + "b0") for _ in range(9)]
    txs = [*good[:where], _bad_tx(led, ev, bad, first[0]), *good[where:]]
    ref = run(led, txs, native=False)
    rejected(ref.results[where], bad)
    assert [r.ok for r in ref.results].count(False) == 1, [r.code for r in ref.results]
    assert len(obj(led, SER + "b0")["x"]) == 1 + 9


@pytest.mark.parametrize("other_at", [0, 9, 12])
def test_block_mixing_kinds_is_declined(led: MemLedger, ev: Ev, other_at: int) -> None:
    box = "urn:epc:id:sscc:4012345.0000000007"
    run(led, [event(led, ev, "maker", "ADD", box, SER + "m0")], native=False)  # sscc: declined
    txs = []
    for i in range(13):
        if i == other_at:
            txs.append(led.sign("maker", "AggregationEvent", ev(
                "AggregationEvent", action="ADD", parentID=box, childEPCs=[SER + "m0"])))
        if i < 12:
            txs.append(event(led, ev, "maker", "OBSERVE", SER + "m0", SER + f"m{i + 1}"))
    ref = run(led, txs, native=False)
    assert ref.all_ok
    assert obj(led, SER + "m0")["in"] == id_key(box)
    assert len(obj(led, SER + "m0")["x"]) == 1 + 12  # the pack is in the genealogy, not in x


@pytest.mark.parametrize(("field", "value", "code"), [
    ("quantityList", [{"epcClass": "urn:epc:class:lgtin:4012345.012345.L1", "quantity": 2}],
     "ok"),
    ("ex:note", "hello", "ok"),
    ("errorDeclaration", {"declarationTime": "2025-03-01T10:00:00Z"}, "ok"),
    ("persistentDisposition", {"set": ["completeness_verified"]}, "ok"),
    ("ilmd", {"ex:lot": "L1"}, "ok"),
    ("bizStep", "urn:epcglobal:cbv:bizstep:shipping", "bad_vocabulary"),
    ("bizLocation", {"id": "ex:l", "ex:more": 1}, "ok"),
    ("eventTime", "2025-03-01T10:00:00.5Z", "ok"),
    ("eventTime", "2025-03-01T10:00:00", "bad_time"),
    ("eventTimeZoneOffset", "+14:30", "bad_time"),
    ("epcList", ["https://id.gs1.org/01/04012345111118/21/x1"], "ok"),
    ("epcList", ["urn:epc:id:sgtin:4012345.011111.a%41"], "ok"),
    ("type", None, "type_mismatch"),
    ("eventID", None, "ok"),                           # a derived eventID
    ("epcList", None, "ok"),                           # no objects at all
    ("bizStep", None, "ok"),
])
def test_outside_the_subset_is_declined_or_equal(led: MemLedger, ev: Ev, field: str, value: Any,
                                                 code: str) -> None:
    """Anything outside the subset: the native path declines, or answers exactly like the
    reference (explicit nulls included)."""
    txs = [event(led, ev, "maker", "ADD", SER + f"o{i}") for i in range(9)]
    body = {**ev("ObjectEvent", action="ADD", epcList=[SER + "o9"]), field: value}
    txs.append(led.sign("maker", "ObjectEvent", body))
    ctx = _ctx(led)
    ref = led.app.execute_reference(led.state, ctx, txs)
    assert ref.results[9].code == code, ref.results[9].reason
    nat = led.app.execute_native(led.state, ctx, txs)
    if nat is not None:
        assert ref.all_ok and nat.results == ref.results and nat.writes == ref.writes
    full = led.app.execute(led.state, ctx, txs)
    assert full.results == ref.results and full.writes == ref.writes


# -- execute is the reference, whichever backend ------------------------------------------------

def test_execute_equals_reference_on_either_backend(accel_backend: ModuleType, led: MemLedger,
                                                    ev: Ev) -> None:
    blocks = [
        [event(led, ev, "maker", "ADD", SER + f"e{i}") for i in range(10)],
        [event(led, ev, "maker", "OBSERVE", SER + f"e{i}") for i in range(10)]
        + [event(led, ev, "recy", "OBSERVE", SER + "e1")],
        [led.sign("maker", "AggregationEvent", ev("AggregationEvent", action="OBSERVE",
                                                  childEPCs=[SER + "e2"]))]
        + [event(led, ev, "maker", "DELETE", SER + f"e{i}") for i in range(3, 12)],
    ]
    for txs in blocks:
        ctx = _ctx(led)
        ref = led.app.execute_reference(led.state, ctx, txs)
        nat = led.app.execute_native(led.state, ctx, txs)
        if accel_backend is _native_py:
            assert nat is None
        full = led.app.execute(led.state, ctx, txs)
        assert full.results == ref.results and full.writes == ref.writes
        led.commit(txs, only_ok=False)
    assert obj(led, SER + "e5")["s"] == "decommissioned"
    rejected(led.app.check(led.state, _ctx(led), event(led, ev, "recy", "ADD", SER + "e0")),
             "already_commissioned")


def test_blocks_are_cut_into_runs_for_the_native_path() -> None:
    from ledger.provenance._app import NATIVE_MIN_RUN, _runs

    class K:
        def __init__(self, kind: str) -> None:
            self.kind = kind

    def shape(kinds: str) -> list[tuple[bool, int]]:
        txs = [K("ObjectEvent" if c == "o" else "AggregationEvent") for c in kinds]
        runs = _runs(txs)  # type: ignore[arg-type]
        assert [t for _, part in runs for t in part] == txs
        return [(native, len(part)) for native, part in runs]

    n = NATIVE_MIN_RUN
    assert shape("ooo") == [(True, 3)]                      # a block of ObjectEvents only
    assert shape("a") == [(False, 1)]
    assert shape("a" + "o" * n + "a") == [(False, 1), (True, n), (False, 1)]
    assert shape("a" + "o" * (n - 1) + "a") == [(False, n + 1)]   # too short: one reference run
    assert shape("o" * (n - 1) + "a" + "o" * n) == [(False, n), (True, n)]
    assert shape("") == [(False, 0)]


# -- a store's key filter answers reads of absent keys natively ---------------------------------

class _FilteredState:
    """A state with a store's `state_filter` (every key it holds, under a prefix) that counts
    the reads reaching Python."""

    PREFIX = b"s/"

    def __init__(self, led: MemLedger, *, drop: bytes | None = None) -> None:
        self._state = led.state
        self.filter = _accel.backend.KeyFilter()
        self.filter.update([self.PREFIX + k for k in led.state.items() if k != drop])
        assert drop is None or self.PREFIX + drop not in self.filter  # (a false positive)
        self.read: list[bytes] = []

    def get(self, key: bytes) -> bytes | None:
        self.read.append(key)
        return self._state.get(key)

    def state_filter(self) -> tuple[Any, bytes]:
        return self.filter, self.PREFIX


@pytest.mark.skipif(not native_loaded(), reason="the filter is read by the extension only")
def test_keys_the_filter_lacks_are_not_read_and_the_result_is_the_same(led: MemLedger,
                                                                       ev: Ev) -> None:
    txs = [event(led, ev, "maker", "ADD", SER + f"f{i}") for i in range(12)]
    ctx = _ctx(led)
    ref = led.app.execute_reference(led.state, ctx, txs)
    state = _FilteredState(led)
    nat = led.app.execute_native(state, ctx, txs)
    assert nat is not None and nat.writes == ref.writes and nat.results == ref.results
    # the new events' and objects' keys were never read through Python; held ones were
    assert state.read and all(led.state.get(k) is not None for k in state.read)
    unfiltered = _FilteredState(led)
    unfiltered.state_filter = None  # type: ignore[assignment,method-assign]
    assert led.app.execute_native(unfiltered, ctx, txs) == nat
    assert len(unfiltered.read) > len(state.read)


@pytest.mark.skipif(not native_loaded(), reason="the filter is read by the extension only")
def test_the_filter_decides_absence(led: MemLedger, ev: Ev) -> None:
    """What the filter lacks is absent for the executor, without asking Python: a filter that
    lost the signer's agent record (a store never does: every write adds its key) makes the
    block look signed by an unknown agent, so the native path declines it."""
    txs = [event(led, ev, "maker", "ADD", SER + f"g{i}") for i in range(9)]
    ctx = _ctx(led)
    agent_key = next(k for k in led.state.items() if k.startswith(b"agent/")
                     and led.app.execute_native(_FilteredState(led, drop=k), ctx, txs) is None)
    state = _FilteredState(led, drop=agent_key)
    assert led.app.execute_native(state, ctx, txs) is None
    assert agent_key not in state.read
