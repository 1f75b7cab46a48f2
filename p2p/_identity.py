"""The node key as the libp2p identity.

libp2p's `Ed25519PrivateKey` wraps a `nacl.signing.SigningKey`, so the key that signs a node's
consensus votes is also the key its Noise handshake proves: a peer id names exactly one genesis
node key, and no second key file exists.
"""

from __future__ import annotations

import nacl.signing
from libp2p.crypto.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from libp2p.crypto.keys import KeyPair
from libp2p.peer.id import ID

from ledger import SigningKey


def keypair_for(key: SigningKey) -> KeyPair:
    """The libp2p key pair of a node key."""
    priv = Ed25519PrivateKey(nacl.signing.SigningKey(key.seed))
    return KeyPair(priv, priv.get_public_key())


def peer_id_for(public_key: bytes) -> ID:
    """The peer id that a 32-byte Ed25519 node public key has on the wire."""
    return ID.from_pubkey(Ed25519PublicKey.from_bytes(public_key))


def public_key_of(peer_id: ID) -> bytes | None:
    """The 32-byte Ed25519 key inside an identity-multihash peer id, or None for other ids."""
    try:
        pub = peer_id.extract_public_key()
    except Exception:  # libp2p raises assorted errors for non-key ids
        return None
    if not isinstance(pub, Ed25519PublicKey):
        return None
    return pub.to_bytes()
