"""Ed25519 keys, signing, and the single verification API of the whole project.

Every signature check — transactions, commit seals, consensus votes, audit replay — goes through
`verify` or `verify_batch`, so that the rule (libsodium's strict verification) and the backend
(Rust extension or pure-Python twin, see `ledger._accel`) are the same everywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import nacl.signing

from ledger import _native_py
from ledger._accel import backend

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64

_verify_batch = getattr(backend, "verify_batch", _native_py.verify_batch)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha256_batch(items: Sequence[bytes]) -> list[bytes]:
    return list(backend.sha256_batch(list(items)))


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An Ed25519 private key; `public` is what the genesis file and signatures name."""

    seed: bytes

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(bytes(nacl.signing.SigningKey.generate()))

    @property
    def public(self) -> bytes:
        return bytes(self._nacl.verify_key)

    @property
    def _nacl(self) -> nacl.signing.SigningKey:
        return nacl.signing.SigningKey(self.seed)

    def sign(self, message: bytes) -> bytes:
        return bytes(self._nacl.sign(message).signature)

    def __repr__(self) -> str:
        return f"SigningKey(public={self.public.hex()[:16]}…)"


def verify(message: bytes, signature: bytes, public_key: bytes) -> bool:
    """True when `signature` is a strictly valid Ed25519 signature of `message` by `public_key`."""
    return verify_batch([message], [signature], [public_key])[0]


def verify_batch(messages: Sequence[bytes], signatures: Sequence[bytes],
                 public_keys: Sequence[bytes]) -> list[bool]:
    """One verdict per signature, identical whichever backend is in use."""
    if not (len(messages) == len(signatures) == len(public_keys)):
        raise ValueError("verify_batch: messages, signatures and public_keys differ in length")
    if not messages:
        return []
    return list(_verify_batch(list(messages), list(signatures), list(public_keys)))
