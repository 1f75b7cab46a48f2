"""Stateless event rules: each broken rule is named with the exact field and position."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.errors import ValidationError
from ledger.provenance._rules import check_event

SER = "urn:epc:id:sgtin:4012345.011111."
LOT = "urn:epc:class:lgtin:4012345.011111."
BASE = {"eventTime": "2025-05-01T10:00:00Z", "eventTimeZoneOffset": "+00:00", "action": "ADD"}


@pytest.mark.parametrize(("fields", "code", "names"), [
    ({"epcList": [SER + "1", "no-colon"]}, "bad_identifier", "epcList[1]"),
    ({"epcList": [SER + "1", 7]}, "bad_identifier", "epcList[1]"),
    ({"epcList": [SER + "1", ""]}, "bad_identifier", "epcList[1]"),
    ({"epcList": ["x:" + "a" * 511]}, "bad_identifier", "epcList[0]"),
    ({"quantityList": [{"epcClass": LOT + "1"}, {"epcClass": "lot"}]}, "bad_identifier",
     "quantityList[1].epcClass"),
    ({"quantityList": [{"epcClass": LOT + "1", "quantity": -1}]}, "bad_quantity",
     "quantityList[0].quantity"),
    ({"quantityList": [{"epcClass": LOT + "1", "quantity": True}]}, "bad_quantity",
     "quantityList[0].quantity"),
    ({"quantityList": [{"epcClass": LOT + "1", "quantity": "-2"}]}, "bad_quantity",
     "quantityList[0].quantity"),
    ({"quantityList": [{"epcClass": LOT + "1", "uom": "KGM"}]}, "bad_field",
     "quantityList[0].uom"),
    ({"quantityList": [{"quantity": 1}]}, "bad_field", "quantityList[0]"),
    ({"epcList": [SER + "1"], "bizLocation": {"id": "here"}}, "bad_identifier",
     "bizLocation.id"),
    ({"epcList": [SER + "1"], "readPoint": {"id": 5}}, "bad_identifier", "readPoint.id"),
])
def test_check_event_names_the_broken_field(fields: dict[str, Any], code: str,
                                            names: str) -> None:
    with pytest.raises(ValidationError) as e:
        check_event("ObjectEvent", {**BASE, **fields})
    assert e.value.code == code
    assert e.value.message.startswith(names)


def test_check_event_accepts_and_sorts_identifiers() -> None:
    v = check_event("ObjectEvent", {**BASE, "epcList": [SER + "1", SER + "2"],
                                    "quantityList": [{"epcClass": LOT + "9", "quantity": 0},
                                                     {"epcClass": LOT + "8", "quantity": "2.5",
                                                      "uom": "KGM"}],
                                    "bizLocation": {"id": "urn:epc:id:sgln:4012345.00001.0"}})
    assert v.epcs == [SER + "1", SER + "2"] and v.classes == [LOT + "9", LOT + "8"]
    assert v.biz_location == "urn:epc:id:sgln:4012345.00001.0"
