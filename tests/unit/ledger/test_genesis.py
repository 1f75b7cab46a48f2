"""Genesis loading: chain id from canonical bytes, validators in order, clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ledger import Genesis, encode, sha256
from ledger.errors import ConfigError
from tests.unit.ledger.helpers import make_consortium


def _doc() -> dict[str, Any]:
    return json.loads(make_consortium().genesis.to_json())


def test_Genesis_chain_id_is_hash_of_canonical_document(tmp_path: Path) -> None:
    g = make_consortium().genesis
    assert g.chain_id == sha256(encode(_doc()))
    p = tmp_path / "genesis.json"
    # whitespace and key order do not matter, values do
    p.write_text(json.dumps(_doc(), indent=None))
    assert Genesis.load(p).chain_id == g.chain_id
    d = _doc()
    d["chain_name"] = "other"
    assert Genesis.from_document(d).chain_id != g.chain_id


def test_Genesis_validators_in_order_and_lookups() -> None:
    c = make_consortium()
    d = _doc()
    d["members"][1]["roles"] = ["observer"]
    g = Genesis.from_document(d)
    assert g.validators == (c.nodes[0].public, c.nodes[2].public, c.nodes[3].public)
    m = g.member_by_org_key(c.orgs[1].public)
    assert m is not None and m.name == "m1" and not m.is_validator
    assert g.member_by_node_key(c.nodes[3].public) is g.member("m3")
    assert g.member_by_org_key(b"x" * 32) is None
    assert [m.name for m in g.members_with_role("observer")] == ["m1"]


def _mutate(path: str, value: Any) -> dict[str, Any]:
    d = _doc()
    target: Any = d
    parts = path.split(".")
    for p in parts[:-1]:
        target = target[int(p)] if p.isdigit() else target[p]
    last = parts[-1]
    if value is KeyError:
        del target[last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return d


@pytest.mark.parametrize(("path", "value", "needle"), [
    ("format", 2, "format 2"),
    ("chain_name", "", "chain_name"),
    ("genesis_time_ms", -1, "genesis_time_ms"),
    ("genesis_time_ms", True, "genesis_time_ms"),
    ("consensus.timeout_ms", 0, "consensus.timeout_ms"),
    ("consensus.extra", 1, "unknown extra"),
    ("members", [], "members"),
    ("members.0.org_key", "zz" * 32, "members[0].org_key"),
    ("members.0.org_key", "AB" * 32, "members[0].org_key"),
    ("members.0.node_key", "ab" * 31, "members[0].node_key"),
    ("members.0.roles", [], "members[0].roles"),
    ("members.0.roles", ["Validator"], "members[0].roles"),
    ("members.0.addresses", ["127.0.0.1:7000"], "members[0].addresses"),
    ("members.1.name", "m0", "members[1].name m0 appears twice"),
    ("members.0.name", KeyError, "missing name"),
    ("extra", 1, "unknown extra"),
])
def test_Genesis_rejects_bad_documents(path: str, value: Any, needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        Genesis.from_document(_mutate(path, value))
    assert needle in str(e.value)
    assert e.value.code in ("genesis_invalid", "genesis_version")


def test_Genesis_rejects_duplicate_keys_floats_no_validator(tmp_path: Path) -> None:
    d = _doc()
    d["members"][1]["org_key"] = d["members"][0]["org_key"]
    with pytest.raises(ConfigError, match=r"org_key .* appears twice"):
        Genesis.from_document(d)
    d = _doc()
    for m in d["members"]:
        m["roles"] = ["member"]
    with pytest.raises(ConfigError, match="validator"):
        Genesis.from_document(d)
    text = json.dumps(_doc())
    with pytest.raises(ConfigError, match="floats"):
        Genesis.loads(text.replace('"genesis_time_ms": 1700000000000',
                                   '"genesis_time_ms": 1.5'))
    with pytest.raises(ConfigError, match="twice"):
        Genesis.loads('{"format": 1, "format": 1}')
    with pytest.raises(ConfigError, match="not valid JSON"):
        Genesis.loads("{")
    with pytest.raises(ConfigError, match="does not exist"):
        Genesis.load(tmp_path / "nope.json")
