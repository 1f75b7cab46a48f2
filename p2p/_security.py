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
from libp2p.connection_types import ConnectionType
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as new_x25519_key_pair
from libp2p.peer.id import ID
from libp2p.security.exceptions import HandshakeFailure
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from multiaddr import Multiaddr

__all__ = ["NOISE_PROTOCOL_ID", "MemberNoise"]

# One socket read takes up to this much: a whole Noise message (at most 65,537 bytes with its
# length) and the start of the next.
READ_AHEAD_BYTES = 1 << 17


class ReadAhead(IRawConnection):
    """The raw connection as the Noise session reads it: one socket read serves many reads.

    py-libp2p's Noise reads each message in two pieces (its 2-byte length, then its body), each a
    socket call through trio, and a message at a time even when several have arrived. Every
    consensus vote and transaction batch is one message, so at light load those calls were a
    tenth of a node's busy time (docs/performance.md, "Twelfth session"). Here a read takes what
    the socket holds, up to `READ_AHEAD_BYTES`, and later reads are served from it. The session
    has one reader (the muxer's), and nothing else reads the raw connection once the handshake
    begins, so no bytes are taken from anyone else."""

    def __init__(self, conn: IRawConnection) -> None:
        self._conn = conn
        self.is_initiator = conn.is_initiator
        self._buf = b""
        self._pos = 0

    async def read(self, n: int | None = None) -> bytes:
        buf, pos = self._buf, self._pos
        if pos < len(buf):
            end = len(buf) if n is None else min(len(buf), pos + n)
            self._pos = end
            return buf[pos:end]
        data = await self._conn.read(READ_AHEAD_BYTES if n is None else max(n, READ_AHEAD_BYTES))
        if n is None or len(data) <= n:
            self._buf, self._pos = b"", 0
            return data
        self._buf, self._pos = data, n
        return data[:n]

    async def write(self, data: bytes) -> None:
        await self._conn.write(data)

    async def close(self) -> None:
        await self._conn.close()

    def get_remote_address(self) -> tuple[str, int] | None:
        return self._conn.get_remote_address()

    def get_transport_addresses(self) -> list[Multiaddr]:
        return self._conn.get_transport_addresses()

    def get_connection_type(self) -> ConnectionType:
        return self._conn.get_connection_type()


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
        return await self._check(await super().secure_inbound(ReadAhead(conn)))

    async def secure_outbound(self, conn: IRawConnection, peer_id: ID) -> ISecureConn:
        return await self._check(await super().secure_outbound(ReadAhead(conn), peer_id))
