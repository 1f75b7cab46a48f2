"""Pure-Python twin of the Rust extension `ledger._native`: same functions, same results.

Selected with `PARTLEDGER_NATIVE=0`, or when the extension is not built. A test runs every
function of both on the same hypothesis-generated inputs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

_sha256 = hashlib.sha256


def sha256_batch(items: Sequence[bytes]) -> list[bytes]:
    return [_sha256(d).digest() for d in items]


def merkle_root(leaves: Sequence[bytes]) -> bytes:
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


def verify_batch(messages: Sequence[bytes], signatures: Sequence[bytes],
                 public_keys: Sequence[bytes]) -> list[bool]:
    """Strict Ed25519 verdicts (libsodium's rule), one per signature."""
    from nacl.bindings import crypto_sign_open  # libsodium's strict verification
    from nacl.exceptions import BadSignatureError

    out: list[bool] = []
    for msg, sig, pk in zip(messages, signatures, public_keys, strict=True):
        if len(sig) != 64 or len(pk) != 32:
            out.append(False)
            continue
        try:
            crypto_sign_open(sig + msg, pk)
        except (BadSignatureError, ValueError, TypeError):
            out.append(False)
        else:
            out.append(True)
    return out
