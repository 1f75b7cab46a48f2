"""Pure-Python twin of the Rust extension `ledger._native`: same functions, same results.

Selected with `PARTLEDGER_NATIVE=0`, or when the extension is not built. Tests run every
function of both on the same inputs (`tests/property/test_native_twin.py`,
`tests/unit/native/`). Signatures follow libsodium's strict rule because they *are* checked by
libsodium (PyNaCl); the Rust side reimplements that rule (`docs/signatures.md`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from ledger._keyfilter import KeyFilter as KeyFilter  # the store's key filter, see that module

_sha256 = hashlib.sha256

_SIGNATURE_BYTES = 64
_PUBLIC_KEY_BYTES = 32


def _bytes_list(items: Iterable[object], what: str) -> list[bytes]:
    """`items` as a list, refusing what the extension refuses (same message)."""
    if isinstance(items, (bytes, str)):
        raise TypeError(f"{what} must be a sequence of bytes")
    out = list(items)
    if not all(isinstance(x, bytes) for x in out):
        raise TypeError(f"{what} must be a sequence of bytes")
    return out  # type: ignore[return-value]


def sha256_batch(items: Sequence[bytes]) -> list[bytes]:
    return [_sha256(d).digest() for d in _bytes_list(items, "items")]


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    leaves = _bytes_list(leaves, "leaves")
    if not leaves:
        return _sha256(b"").digest()
    level = [_sha256(b"\x00" + d).digest() for d in leaves]
    while len(level) > 1:
        nxt = [_sha256(b"\x01" + level[i] + level[i + 1]).digest()
               for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def _leaf_hash(data: bytes) -> bytes:
    return _sha256(b"\x00" + data).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _root_of_hashes(hashes: Sequence[bytes]) -> bytes:
    level = list(hashes)
    while len(level) > 1:
        nxt = [_node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1 for leaf `index`, read against the RFC line by line."""
    leaves = _bytes_list(leaves, "leaves")
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} outside a tree of {len(leaves)}")
    return _path(index, [_leaf_hash(d) for d in leaves])


def _path(m: int, hashes: Sequence[bytes]) -> list[bytes]:
    n = len(hashes)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(m, hashes[:k]), _root_of_hashes(hashes[k:])]
    return [*_path(m - k, hashes[k:]), _root_of_hashes(hashes[:k])]


def consistency_proof(old_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 §2.1.4.1, from the tree of the first `old_size` leaves."""
    leaves = _bytes_list(leaves, "leaves")
    n = len(leaves)
    if not 0 < old_size <= n:
        raise ValueError(f"old size {old_size} outside 1..{n}")
    return _subproof(old_size, [_leaf_hash(d) for d in leaves], True)


def _subproof(m: int, hashes: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(hashes)
    if m == n:
        return [] if complete else [_root_of_hashes(hashes)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, hashes[:k], complete), _root_of_hashes(hashes[k:])]
    return [*_subproof(m - k, hashes[k:], False), _root_of_hashes(hashes[:k])]


def verify(message: bytes, signature: bytes, public_key: bytes) -> bool:
    """libsodium's strict verdict on one signature; wrong lengths give False."""
    if not (isinstance(message, bytes) and isinstance(signature, bytes)
            and isinstance(public_key, bytes)):
        raise TypeError("verify takes bytes")
    if len(signature) != _SIGNATURE_BYTES or len(public_key) != _PUBLIC_KEY_BYTES:
        return False
    try:
        crypto_sign_open(signature + message, public_key)
    except BadSignatureError:
        return False
    return True


def verify_batch(messages: Sequence[bytes], signatures: Sequence[bytes],
                 public_keys: Sequence[bytes]) -> list[bool]:
    """Strict Ed25519 verdicts (libsodium's rule), one per signature, in order."""
    messages = _bytes_list(messages, "messages")
    signatures = _bytes_list(signatures, "signatures")
    public_keys = _bytes_list(public_keys, "public_keys")
    if not len(messages) == len(signatures) == len(public_keys):
        raise ValueError("verify_batch: messages, signatures and public_keys differ in length")
    return [verify(m, s, k) for m, s, k in zip(messages, signatures, public_keys, strict=True)]


def set_threads(n: int) -> None:
    """Accepted for parity with the extension; the twin always runs on the calling thread."""
    if n < 0:
        raise ValueError("set_threads: n must be >= 0")


def get_threads() -> int:
    return 1


def reset_after_fork() -> None:
    """Parity with the extension (which must forget its worker threads in a forked child)."""


def canonical_check(data: bytes) -> bool:
    """True iff `ledger._codec.decode` (without its size limit) accepts `data`."""
    from ledger import _codec
    from ledger.errors import DecodeError

    if not isinstance(data, bytes):
        raise TypeError("canonical_check takes bytes")
    try:
        _codec.decode_python(data)
    except DecodeError:
        return False
    return True


_PLAIN = frozenset({str, bytes, bool, int, type(None)})


def canonical_encode(value: object) -> bytes | None:
    """The canonical encoding of `value` when it is made only of the exact built-in types of
    the profile (dict with str keys, list, tuple, int, str, bytes, bool, None) and
    `ledger._codec.encode` accepts it; None otherwise (the extension's contract)."""
    from ledger import _codec
    from ledger.errors import DecodeError

    if not _plain(value, 0):
        return None
    try:
        return _codec.encode_python(value)
    except (DecodeError, ValueError):  # ValueError: UnicodeEncodeError for lone surrogates
        return None


def _plain(value: object, depth: int) -> bool:
    from ledger._codec import MAX_DEPTH

    if depth > MAX_DEPTH:
        return False
    t = type(value)
    if t in _PLAIN:
        return True
    if t is dict:
        return all(type(k) is str and _plain(v, depth + 1)
                   for k, v in value.items())  # type: ignore[attr-defined]
    if t is list or t is tuple:
        return all(_plain(v, depth + 1) for v in value)  # type: ignore[attr-defined]
    return False


def state_root(domain: bytes, prev_root: bytes, writes: object) -> bytes | None:
    """`ledger._app.next_state_root` under `domain` when `writes` is a `dict` of exact `bytes`
    keys to exact `bytes` or None; None otherwise (the extension's contract)."""
    from ledger import _codec
    from ledger.errors import DecodeError

    if type(writes) is not dict or not all(
            type(k) is bytes and (v is None or type(v) is bytes) for k, v in writes.items()):
        return None
    try:
        doc = _codec.encode_python(sorted(writes.items()))
    except DecodeError:  # beyond the document size limit
        return None
    return _sha256(domain + prev_root + _sha256(doc).digest()).digest()


def state_batch(prefix: bytes, writes: object, max_key: int
                ) -> tuple[list[bytes], list[bytes], list[bytes]] | None:
    """`(put keys, their values, delete keys)` for the store's batch: every key behind
    `prefix`, the puts in key order; None unless `writes` is a `dict` of exact `bytes` keys of
    1 to `max_key` bytes to exact `bytes` or None (the extension's contract)."""
    if type(writes) is not dict or not all(
            type(k) is bytes and 0 < len(k) <= max_key and (v is None or type(v) is bytes)
            for k, v in writes.items()):
        return None
    keys, values, deletes = [], [], []
    for k in sorted(writes):
        v = writes[k]
        if v is None:
            deletes.append(prefix + k)
        else:
            keys.append(prefix + k)
            values.append(v)
    return keys, values, deletes


def value_refs(values: list[bytes], key_head: bytes, ref_head: bytes, min_bytes: int,
               inline: list[int]) -> tuple[list[bytes], list[bytes], list[bytes]] | None:
    """`(values, moved keys, moved values)` for the store's two batches: each value of at least
    `min_bytes` whose position is not in `inline`, or starting with `ref_head`'s first byte, is
    replaced by `ref_head ‖ be32 i` (`i` its position) and moved to the key `key_head ‖ be32 i`;
    None unless `values` holds only exact `bytes` and `inline` ascending positions (the
    extension's contract)."""
    if not all(type(v) is bytes for v in values) or any(
            type(i) is not int for i in inline) or inline != sorted(set(inline)):
        return None
    tag = ref_head[:1]
    keep = set(inline)
    out, moved_keys, moved = [], [], []
    for i, v in enumerate(values):
        if (len(v) >= min_bytes and i not in keep) or (tag and v[:1] == tag):
            index = i.to_bytes(4, "big")
            moved_keys.append(key_head + index)
            moved.append(v)
            v = ref_head + index
        out.append(v)
    return out, moved_keys, moved


def tx_fields(data: bytes) -> tuple[bytes, str, bytes, bytes, int, bytes, bytes] | None:
    """`(chain, kind, body bytes, signer, nonce, sig, tx_id)` of a canonical version-1
    transaction whose fields `Transaction.from_obj` accepts; None otherwise (the extension's
    contract; a `v` of `true`, equal to 1 in Python, is not the integer 1)."""
    from ledger import _codec
    from ledger._tx import MAX_TX_BYTES, Transaction
    from ledger.errors import DecodeError

    if type(data) is not bytes or len(data) > MAX_TX_BYTES:
        return None
    try:
        m = _codec.decode_python(data)
        tx = Transaction.from_obj(m, raw=data)
    except DecodeError:
        return None
    if type(m["v"]) is not int:
        return None
    return (tx.chain, tx.kind, _codec.encode_python(tx.body), tx.signer, tx.nonce, tx.sig,
            tx.tx_id)
