"""Ed25519 keys, signing, and the single verification API of the whole project.

Every signature check — transactions, commit seals, consensus votes, audit replay — goes through
`verify` or `verify_batch`, so that the rule (libsodium's strict verification, see
docs/signatures.md) and the backend (Rust extension or pure-Python twin, see `ledger._accel`)
are the same everywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import nacl.signing

from ledger import _accel

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha256_batch(items: Sequence[bytes]) -> list[bytes]:
    """SHA-256 of each item, in order (in parallel on the native backend)."""
    return list(_accel.backend.sha256_batch(items))


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An Ed25519 private key; `public` is what the genesis file and signatures name."""

    seed: bytes
    # derived once: deriving the key pair from the seed is a scalar multiplication (tens of
    # µs), and a validator asks for its public key and signs several times per height
    _nacl: nacl.signing.SigningKey = field(init=False, repr=False, compare=False)
    public: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        key = nacl.signing.SigningKey(self.seed)
        object.__setattr__(self, "_nacl", key)
        object.__setattr__(self, "public", bytes(key.verify_key))

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(bytes(nacl.signing.SigningKey.generate()))

    def sign(self, message: bytes) -> bytes:
        return bytes(self._nacl.sign(message).signature)

    def __repr__(self) -> str:
        return f"SigningKey(public={self.public.hex()[:16]}…)"


def verify(message: bytes, signature: bytes, public_key: bytes) -> bool:
    """True when `signature` is a strictly valid Ed25519 signature of `message` by `public_key`.

    Args:
        message: the signed bytes.
        signature: 64 bytes `R ‖ S`; any other length is simply invalid.
        public_key: 32 bytes; any other length is simply invalid.

    Returns:
        libsodium's strict verdict, identical on both backends.

    Raises:
        TypeError: an argument is not `bytes`.
    """
    return bool(_accel.backend.verify(message, signature, public_key))


def verify_batch(messages: Sequence[bytes], signatures: Sequence[bytes],
                 public_keys: Sequence[bytes]) -> list[bool]:
    """One verdict per signature, in order, identical whichever backend is in use.

    The native backend releases the GIL and checks the signatures one by one on all cores
    (no batch equation, which could accept more than the strict rule).

    Raises:
        ValueError: the three sequences differ in length.
        TypeError: an item is not `bytes`.
    """
    if not len(messages) == len(signatures) == len(public_keys):
        raise ValueError("verify_batch: messages, signatures and public_keys differ in length")
    if not messages:
        return []
    return list(_accel.backend.verify_batch(messages, signatures, public_keys))
