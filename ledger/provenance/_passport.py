"""Access tiers of passport attributes: commitments, sealed values, disclosure checks.

A restricted attribute is stored as `commit = SHA-256(domain ‖ salt ‖ canonical(value))` and, for
each entitled organisation, `enc[org] = crypto_box_seal(canonical({salt, value}))` to the X25519
twin of that organisation's Ed25519 key. Members without an entry learn nothing (the salt hides
low-entropy values from guessing); anyone shown `(value, salt)` later can check it against the
ledger with `verify_disclosure`. Sealing happens in the client that builds the transaction (it
needs randomness); the state machine only checks shapes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from typing import Any

import nacl.bindings as sodium
import nacl.public
import nacl.signing

from ledger._codec import decode, encode
from ledger._crypto import SigningKey, sha256
from ledger.errors import VerificationError

COMMIT_DOMAIN = b"partledger/passport-commit/v1\x00"
SALT_BYTES = 16


def commitment(value: Any, salt: bytes) -> bytes:
    return sha256(COMMIT_DOMAIN + salt + encode(value))


def _x25519(ed_pub: bytes) -> bytes:
    return bytes(sodium.crypto_sign_ed25519_pk_to_curve25519(ed_pub))


def _seal(message: bytes, ed_pub: bytes, ephemeral_seed: bytes) -> bytes:
    """libsodium `crypto_box_seal`, with the ephemeral key supplied (deterministic in tests)."""
    pk = _x25519(ed_pub)
    esk = hashlib.sha256(b"partledger/seal-ephemeral\x00" + ephemeral_seed).digest()
    epk = bytes(sodium.crypto_scalarmult_base(esk))
    nonce = hashlib.blake2b(epk + pk, digest_size=24).digest()
    return epk + bytes(sodium.crypto_box(message, nonce, pk, esk))


def seal_attribute(path: str, tier: str, value: Any, recipients: Mapping[str, bytes], *,
                   random_bytes: Callable[[int], bytes] = os.urandom) -> dict[str, Any]:
    """A restricted attribute entry for a passport transaction.

    Args:
        recipients: entitled organisation name -> its Ed25519 org public key.
        random_bytes: source of salt and ephemeral keys (os.urandom; a seeded one for demos).
    """
    salt = random_bytes(SALT_BYTES)
    plain = encode({"salt": salt, "value": value})
    enc = {org: _seal(plain, pub, random_bytes(32)) for org, pub in sorted(recipients.items())}
    return {"path": path, "tier": tier, "commit": commitment(value, salt), "enc": enc}


def open_attribute(attr: Mapping[str, Any], org: str, key: SigningKey) -> tuple[Any, bytes]:
    """Decrypt the entry of `org` with its org key; returns (value, salt).

    Raises:
        VerificationError: `org` is not entitled, the box does not open, or the value does not
            match the commitment on the ledger.
    """
    blob = (attr.get("enc") or {}).get(org)
    if blob is None:
        raise VerificationError(f"{org} is not entitled to {attr.get('path')}",
                                code="not_entitled")
    sk = nacl.signing.SigningKey(key.seed).to_curve25519_private_key()
    try:
        plain = nacl.public.SealedBox(sk).decrypt(blob)
    except Exception as exc:  # nacl raises CryptoError
        raise VerificationError(f"the sealed value of {attr.get('path')} does not open with "
                                f"{org}'s key", code="seal_open_failed") from exc
    m = decode(plain)
    if not verify_disclosure(attr, m["value"], m["salt"]):
        raise VerificationError(f"the sealed value of {attr.get('path')} does not match its "
                                "commitment", code="commitment_mismatch")
    return m["value"], m["salt"]


def verify_disclosure(attr: Mapping[str, Any], value: Any, salt: bytes) -> bool:
    """Does a disclosed (value, salt) match the commitment recorded on the ledger?"""
    return bool(attr.get("commit") == commitment(value, salt))
