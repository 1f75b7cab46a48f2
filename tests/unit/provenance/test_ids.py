"""EPC URNs and GS1 Digital Link URIs of one object resolve to the same ledger key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.provenance._ids import company_digits, gs1_check_digit, id_key, is_class_key

PAIRS = [
    # SGTIN
    ("urn:epc:id:sgtin:0614141.107346.2017", "https://id.gs1.org/01/10614141073464/21/2017"),
    ("urn:epc:id:sgtin:4012345.011111.A%2FB", "https://example.com/01/04012345111118/21/A%2FB"),
    # LGTIN (GTIN-13 in the Digital Link is padded to 14 digits)
    ("urn:epc:class:lgtin:4012345.012345.998877",
     "https://id.gs1.org/01/4012345123456/10/998877"),
    # SSCC
    ("urn:epc:id:sscc:0614141.1234567890", "https://id.gs1.org/00/106141412345678908"),
    # SGLN, with and without extension
    ("urn:epc:id:sgln:0614141.00777.0", "https://id.gs1.org/414/0614141007776"),
    ("urn:epc:id:sgln:0614141.00777.987", "https://id.gs1.org/414/0614141007776/254/987"),
    # GRAI, GIAI
    ("urn:epc:id:grai:4012345.55555.98765", "https://id.gs1.org/8003/04012345555554" "98765"),
    ("urn:epc:id:giai:4000001.12345", "https://id.gs1.org/8004/400000112345"),
    # product class pattern
    ("urn:epc:idpat:sgtin:4012345.098765.*", "https://id.gs1.org/01/04012345987652"),
]


@pytest.mark.parametrize(("epc", "dl"), PAIRS)
def test_id_key_same_for_both_forms(epc: str, dl: str) -> None:
    assert id_key(epc) == id_key(dl)
    assert id_key(epc) != epc


def test_id_key_keeps_unconvertible_identifiers() -> None:
    for uri in ("urn:epc:id:bic:CSQU3054383", "https://example.com/thing/1", "urn:uuid:x"):
        assert id_key(uri) == uri


def test_check_digit() -> None:
    assert gs1_check_digit("061414100777") == "6"   # GLN 0614141007776
    assert gs1_check_digit("1061414107346") == "4"


def test_class_and_company_digits() -> None:
    k = id_key("urn:epc:class:lgtin:4012345.012345.998877")
    assert is_class_key(k)
    assert not is_class_key(id_key("urn:epc:id:sgtin:0614141.107346.2017"))
    d = company_digits(id_key("urn:epc:id:sgtin:0614141.107346.2017"))
    assert d is not None and d.startswith("0614141")
    d = company_digits(id_key("https://id.gs1.org/00/106141412345678908"))
    assert d is not None and d.startswith("0614141")


def _check_digit_by_definition(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        total += int(ch) * (3 if i % 2 == 0 else 1)
    return str((10 - total % 10) % 10)


@given(st.text(alphabet="0123456789", max_size=20))
def test_check_digit_matches_definition(digits: str) -> None:
    assert gs1_check_digit(digits) == _check_digit_by_definition(digits)


@pytest.mark.parametrize("uri", [
    "urn:epc:id:sgtin:4012345077889..1",      # found by the fuzzer: empty item reference
    "urn:epc:id:sscc:06141411234567890.",
    "urn:epc:class:lgtin:4012345077889..lot",
    "urn:epc:idpat:sgtin:4012345077889..*",
])
def test_id_key_keeps_urns_without_reference_digits(uri: str) -> None:
    assert id_key(uri) == uri


@given(st.from_regex(r"urn:epc:(id|class|idpat):(sgtin|sscc|sgln|pgln|grai|giai|gdti|lgtin):"
                     r"[0-9.*%A-Za-z]{0,24}", fullmatch=True) | st.text(max_size=64))
def test_id_key_is_total(uri: str) -> None:
    """Any text is an identifier: convertible ones get their Digital Link key, the rest keep
    their own text; nothing raises."""
    assert isinstance(id_key(uri), str)
