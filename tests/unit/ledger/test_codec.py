from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import decode, encode
from ledger.errors import DecodeError

values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)


@given(values)
def test_codec_roundtrip(value: object) -> None:
    assert decode(encode(value)) == value
    assert encode(decode(encode(value))) == encode(value)


def test_codec_rejects_unsorted_keys() -> None:
    raw = msgpack.packb({"b": 1, "a": 2})
    with pytest.raises(DecodeError) as e:
        decode(raw)
    assert e.value.code == "unsorted_keys"


def test_codec_rejects_duplicate_keys() -> None:
    raw = b"\x82\xa1a\x01\xa1a\x02"
    with pytest.raises(DecodeError) as e:
        decode(raw)
    assert e.value.code == "duplicate_key"


@pytest.mark.parametrize(("raw", "code"), [
    (msgpack.packb(1.5), "float"),
    (msgpack.packb(1) + b"\x00", "trailing_bytes"),
    (b"\xcd\x00\x01", "non_canonical"),  # 1 as uint16
    (msgpack.packb({1: 2}, strict_types=False), "key_type"),
    (msgpack.packb(msgpack.ExtType(1, b"x")), "ext_type"),
    (msgpack.packb(2**64 - 1), "int_range"),
    (b"\x91" * 40 + b"\xc0", "too_deep"),
    (b"\xc1", "malformed"),
])
def test_codec_rejects_non_canonical(raw: bytes, code: str) -> None:
    with pytest.raises(DecodeError) as e:
        decode(raw)
    assert e.value.code == code


def test_codec_refuses_to_encode_floats() -> None:
    with pytest.raises(DecodeError):
        encode({"mass": 1.5})


def _nest(depth: int, leaf: object) -> object:
    v = leaf
    for i in range(depth):
        v = [v] if i % 2 else {"k": v}
    return v


@pytest.mark.parametrize("leaf", [None, 1, "s", b"b", True, [], {}])
def test_codec_encode_and_decode_agree_on_depth(leaf: object) -> None:
    from ledger._codec import MAX_DEPTH

    ok = _nest(MAX_DEPTH, leaf)
    assert decode(encode(ok)) == ok
    too_deep = _nest(MAX_DEPTH + 1, leaf)
    with pytest.raises(DecodeError) as e:
        encode(too_deep)
    assert e.value.code == "too_deep"


@pytest.mark.parametrize(("value", "code"), [
    ({1: 2, "a": 1}, "key_type"), ({"a": [1.5]}, "float"), ({"a": {"b": 2**63}}, "int_range"),
    ([object()], "type"),
])
def test_codec_encode_refuses_with_decode_error(value: object, code: str) -> None:
    with pytest.raises(DecodeError) as e:
        encode(value)
    assert e.value.code == code


@given(values)
def test_codec_decode_trusted_agrees_on_canonical_bytes(value: object) -> None:
    from ledger._codec import decode_trusted

    raw = encode(value)
    assert decode_trusted(raw) == decode(raw)


def test_codec_decode_trusted_refuses_garbage_cleanly() -> None:
    from ledger._codec import decode_trusted

    with pytest.raises(DecodeError):
        decode_trusted(b"\xc1")
