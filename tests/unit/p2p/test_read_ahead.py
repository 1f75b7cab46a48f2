"""`ReadAhead`: the raw connection under the Noise session serves reads from one socket read."""

from __future__ import annotations

import trio
from libp2p.abc import IRawConnection
from libp2p.connection_types import ConnectionType
from multiaddr import Multiaddr

from p2p._security import READ_AHEAD_BYTES, ReadAhead


class ChunkConn(IRawConnection):
    """Hands out the given chunks, one per read, whatever size is asked (a socket's recv)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.is_initiator = True
        self.chunks = chunks
        self.asked: list[int | None] = []
        self.written: list[bytes] = []
        self.closed = False

    async def read(self, n: int | None = None) -> bytes:
        self.asked.append(n)
        data = self.chunks.pop(0) if self.chunks else b""
        assert n is None or len(data) <= n
        return data

    async def write(self, data: bytes) -> None:
        self.written.append(data)

    async def close(self) -> None:
        self.closed = True

    def get_remote_address(self) -> tuple[str, int] | None:
        return ("127.0.0.1", 4001)

    def get_transport_addresses(self) -> list[Multiaddr]:
        return [Multiaddr("/ip4/127.0.0.1/tcp/4001")]

    def get_connection_type(self) -> ConnectionType:
        return ConnectionType.DIRECT


def test_one_socket_read_serves_a_length_and_its_body_and_the_next_message() -> None:
    async def main() -> None:
        inner = ChunkConn([b"\x00\x03abc\x00\x02de", b"fg"])
        conn = ReadAhead(inner)
        assert await conn.read(2) == b"\x00\x03"
        assert await conn.read(3) == b"abc"
        assert await conn.read(2) == b"\x00\x02"
        assert await conn.read(10) == b"de"  # what is buffered: fewer bytes than asked, no call
        assert inner.asked == [READ_AHEAD_BYTES]
        assert await conn.read(5) == b"fg"
        assert await conn.read(5) == b""  # end of stream passes through
        assert inner.asked == [READ_AHEAD_BYTES] * 3

    trio.run(main)


def test_reads_larger_than_the_read_ahead_and_unsized_reads() -> None:
    async def main() -> None:
        big = bytes(READ_AHEAD_BYTES + 10)
        inner = ChunkConn([b"xyz", big, b"tail"])
        conn = ReadAhead(inner)
        assert await conn.read(1) == b"x"
        assert await conn.read() == b"yz"  # all that is buffered
        assert await conn.read(len(big)) == big
        assert await conn.read() == b"tail"
        assert inner.asked == [READ_AHEAD_BYTES, len(big), READ_AHEAD_BYTES]

    trio.run(main)


def test_everything_else_goes_to_the_connection() -> None:
    async def main() -> None:
        inner = ChunkConn([])
        conn = ReadAhead(inner)
        await conn.write(b"hello")
        assert inner.written == [b"hello"] and conn.is_initiator
        assert conn.get_remote_address() == ("127.0.0.1", 4001)
        assert conn.get_transport_addresses() == inner.get_transport_addresses()
        assert conn.get_connection_type() is ConnectionType.DIRECT
        await conn.close()
        assert inner.closed

    trio.run(main)
