"""Permissioned Noise: only the consortium's node keys complete a handshake.

Why in the handshake: py-libp2p has no peer-id connection gater (its `allow_list` is by IP), and
a check in the stream handlers alone would leave an outsider holding a connection. The Noise XX
handshake authenticates the remote peer id (its static key is signed by the identity key), so we
check it there, in both directions, and close the connection before any protocol runs. Plaintext
is never offered: with it a dialer can claim any peer id.
"""

from __future__ import annotations

from collections.abc import Callable

from libp2p.abc import IRawConnection, ISecureConn
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as new_x25519_key_pair
from libp2p.peer.id import ID
from libp2p.security.exceptions import HandshakeFailure
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport

__all__ = ["NOISE_PROTOCOL_ID", "MemberNoise"]


class MemberNoise(NoiseTransport):
    """Noise XX that aborts unless the authenticated remote peer id is a member.

    `is_member` is consulted on every handshake (so the set can follow the genesis file);
    `on_refused` is told the refused peer id (for metrics and logs).
    """

    def __init__(self, keypair: KeyPair, *, is_member: Callable[[ID], bool],
                 on_refused: Callable[[ID], None] | None = None) -> None:
        super().__init__(keypair, noise_privkey=new_x25519_key_pair().private_key)
        self._is_member = is_member
        self._on_refused = on_refused

    async def _check(self, conn: ISecureConn) -> ISecureConn:
        remote = conn.get_remote_peer()
        if not self._is_member(remote):
            if self._on_refused is not None:
                self._on_refused(remote)
            await conn.close()
            raise HandshakeFailure(f"peer {remote} is not a member of this consortium")
        return conn

    async def secure_inbound(self, conn: IRawConnection) -> ISecureConn:
        return await self._check(await super().secure_inbound(conn))

    async def secure_outbound(self, conn: IRawConnection, peer_id: ID) -> ISecureConn:
        return await self._check(await super().secure_outbound(conn, peer_id))
