"""Pure-Python twin of the Rust extension `ledger._native`: same functions, same results.

Selected with `PARTLEDGER_NATIVE=0`, or when the extension is not built. Tests run every
function of both on the same inputs (`tests/property/test_native_twin.py`,
`tests/unit/native/`). Signatures follow libsodium's strict rule because they *are* checked by
libsodium (PyNaCl); the Rust side reimplements that rule (`docs/signatures.md`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

_sha256 = hashlib.sha256

_SIGNATURE_BYTES = 64
_PUBLIC_KEY_BYTES = 32


def _check_bytes(items: Sequence[object], what: str) -> None:
    if isinstance(items, (bytes, str)) or not all(isinstance(x, bytes) for x in items):
        raise TypeError(f"{what} must be a sequence of bytes")


def sha256_batch(items: Sequence[bytes]) -> list[bytes]:
    _check_bytes(items, "items")
    return [_sha256(d).digest() for d in items]


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    _check_bytes(leaves, "leaves")
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
    _check_bytes(messages, "messages")
    _check_bytes(signatures, "signatures")
    _check_bytes(public_keys, "public_keys")
    if not len(messages) == len(signatures) == len(public_keys):
        raise ValueError("verify_batch: messages, signatures and public_keys differ in length")
    return [verify(m, s, k) for m, s, k in zip(messages, signatures, public_keys, strict=True)]


def set_threads(n: int) -> None:
    """Accepted for parity with the extension; the twin always runs on the calling thread."""
    if n < 0:
        raise ValueError("set_threads: n must be >= 0")


def get_threads() -> int:
    return 1
