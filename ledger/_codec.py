"""Canonical msgpack: one value, exactly one encoding.

Every hash and signature in partledger is over these bytes, so two honest machines must produce
the same bytes for the same value, and a decoder must refuse every other encoding of it (else a
peer could make two different byte strings that mean the same transaction).

Profile: maps with `str` keys sorted by their UTF-8 bytes and no duplicates; `bin` for bytes,
`str` for text; integers within int64 in their shortest form; no floats, no extension types;
nesting at most `MAX_DEPTH` deep; a whole document at most `MAX_DOCUMENT_BYTES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgpack

from ledger import _accel, _native_py
from ledger.errors import DecodeError, UnknownVersionError

MAX_DEPTH = 32
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_packer = msgpack.Packer(use_bin_type=True, strict_types=False, autoreset=True)


_PASS_THROUGH = frozenset({str, bytes, bool, type(None)})


def _canonical(value: Any, depth: int) -> Any:
    """`value` as plain dicts (keys sorted), lists, ints, str, bytes, bool, None.

    The exact built-in types take a fast path (this runs for every hash and signature); any
    other type (subclasses, mappings, bytearray, ...) goes through `_canonical_other`.
    """
    if depth > MAX_DEPTH:
        raise DecodeError(f"value nests deeper than {MAX_DEPTH} levels", code="too_deep")
    t = type(value)
    if t in _PASS_THROUGH:
        return value
    if t is int:
        if not INT64_MIN <= value <= INT64_MAX:
            raise DecodeError(f"integer {value} is outside int64", code="int_range")
        return value
    if t is dict:
        for key in value:
            if type(key) is not str:
                return _canonical_other(value, depth)
        d = depth + 1
        if d > MAX_DEPTH and value:
            raise DecodeError(f"value nests deeper than {MAX_DEPTH} levels", code="too_deep")
        return {k: (value[k] if type(value[k]) in _PASS_THROUGH else _canonical(value[k], d))
                for k in sorted(value)}
    if t is list or t is tuple:
        d = depth + 1
        if d > MAX_DEPTH and value:
            raise DecodeError(f"value nests deeper than {MAX_DEPTH} levels", code="too_deep")
        return [v if type(v) in _PASS_THROUGH else _canonical(v, d) for v in value]
    return _canonical_other(value, depth)


def _canonical_other(value: Any, depth: int) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str | bytes):
        return value
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise DecodeError(f"integer {value} is outside int64", code="int_range")
        return value
    if isinstance(value, float):
        raise DecodeError("floats are not allowed: use an integer with a scale, or a decimal string",
                          code="float")
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise DecodeError(f"map key {key!r} is not a string", code="key_type")
        out: dict[str, Any] = {}
        for key in sorted(value):
            out[str(key)] = _canonical(value[key], depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_canonical(v, depth + 1) for v in value]
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise DecodeError(f"type {type(value).__name__} cannot be encoded", code="type")


def encode(value: Any) -> bytes:
    """Encode `value` canonically.

    The native backend encodes values made of the exact built-in types in one pass
    (`canonical_encode`, same bytes); it answers None for anything else, which then takes the
    Python path below (the reference), so errors are raised here either way.

    Raises:
        DecodeError: the value holds something outside the profile (a float, a big int, ...).
    """
    backend = _accel.backend
    if backend is not _native_py:
        fast: bytes | None = backend.canonical_encode(value)
        if fast is not None:
            return fast
    return encode_python(value)


def encode_python(value: Any) -> bytes:
    """`encode` on the pure-Python path (the reference the native path is tested against)."""
    data: bytes = _packer.pack(_canonical(value, 0))
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DecodeError(f"document of {len(data)} bytes exceeds {MAX_DOCUMENT_BYTES}", code="too_big")
    return data


def _pairs_hook(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    prev: bytes | None = None
    for key, _ in pairs:
        if not isinstance(key, str):
            raise DecodeError(f"map key {key!r} is not a string", code="key_type")
        kb = key.encode()
        if prev is not None:
            if kb == prev:
                raise DecodeError(f"duplicate map key {key!r}", code="duplicate_key")
            if kb < prev:
                raise DecodeError(f"map keys not sorted: {key!r} after {prev.decode()!r}",
                                  code="unsorted_keys")
        prev = kb
    return dict(pairs)


def _check_types(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise DecodeError(f"value nests deeper than {MAX_DEPTH} levels", code="too_deep")
    if isinstance(value, float):
        raise DecodeError("floats are not allowed", code="float")
    if isinstance(value, msgpack.Timestamp):  # the one extension msgpack decodes by itself
        raise DecodeError("extension type -1 (timestamp) is not allowed", code="ext_type")
    if isinstance(value, dict):
        for v in value.values():
            _check_types(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_types(v, depth + 1)
    elif (isinstance(value, int) and not isinstance(value, bool)
          and not INT64_MIN <= value <= INT64_MAX):
        raise DecodeError(f"integer {value} is outside int64", code="int_range")


def decode(data: bytes, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> Any:
    """Decode canonical bytes; refuse anything that is not the one encoding of its value.

    The native backend first checks the bytes against the whole profile in one pass
    (`canonical_check`, true exactly when `decode_python` accepts them); canonical bytes are
    then unpacked with no hooks and no re-encoding. Anything else takes the Python path, which
    names the rule broken.

    Raises:
        DecodeError: with a `code` naming the first rule broken.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"expected bytes, got {type(data).__name__}", code="type")
    data = bytes(data)
    if len(data) > max_bytes:
        raise DecodeError(f"document of {len(data)} bytes exceeds {max_bytes}", code="too_big")
    backend = _accel.backend
    if backend is not _native_py and backend.canonical_check(data):
        return unpack_canonical(data)
    return decode_python(data)


def unpack_canonical(data: bytes) -> Any:
    """The value of bytes already proven canonical (by `canonical_check`, or as part of a
    document that was), unpacked with no checks."""
    return _unpackb(data, raw=False, strict_map_key=False, use_list=True)


def decode_python(data: bytes) -> Any:
    """`decode` on the pure-Python path, without the size limit (the reference the native
    check is tested against)."""
    try:
        value = msgpack.unpackb(
            data, raw=False, use_list=True, strict_map_key=False, object_pairs_hook=_pairs_hook,
            ext_hook=_reject_ext,
        )
    except DecodeError:
        raise
    except msgpack.ExtraData as exc:
        raise DecodeError("trailing bytes after the document", code="trailing_bytes") from exc
    except RecursionError as exc:
        raise DecodeError("value nests too deep", code="too_deep") from exc
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise DecodeError(f"malformed msgpack: {exc}", code="malformed") from exc
    _check_types(value, 0)
    if _packer.pack(value) != data:
        raise DecodeError("non-canonical encoding (an integer, string or container is not in its "
                          "shortest form)", code="non_canonical")
    return value


def decode_trusted(data: bytes) -> Any:
    """Decode bytes this process's own code encoded and stored (the state records of its own
    store), skipping the canonical-form checks, which cost about 8x the decode itself.

    Never use it on bytes from a peer, a file or an API: those go through `decode`. A damaged
    record read this way can at worst make this node compute a different state root, which its
    peers' seals then refuse — never a fork.

    Raises:
        DecodeError: the bytes are not msgpack at all.
    """
    try:
        return _unpackb(data, raw=False, strict_map_key=False)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise DecodeError(f"malformed stored record: {exc}", code="malformed") from exc


_unpackb = msgpack.unpackb


def _reject_ext(code: int, data: bytes) -> Any:
    raise DecodeError(f"extension type {code} is not allowed", code="ext_type")


def decode_map(data: bytes, *, what: str, version: int, max_bytes: int = MAX_DOCUMENT_BYTES
               ) -> dict[str, Any]:
    """Decode a versioned structure: a map whose `v` field must equal `version`."""
    value = decode(data, max_bytes=max_bytes)
    if not isinstance(value, dict):
        raise DecodeError(f"{what}: expected a map, got {type(value).__name__}", code="type")
    check_version(value, what=what, version=version)
    return value


def check_version(value: Mapping[str, Any], *, what: str, version: int) -> None:
    v = value.get("v")
    if v != version:
        raise UnknownVersionError(f"{what}: format version {v!r} is not supported (expected {version})")
