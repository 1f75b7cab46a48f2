"""Real libp2p hosts on loopback in one trio.run: mesh, channels, requests, permissioning."""

from __future__ import annotations

import os
import struct
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import multiaddr
import pytest
import trio
from libp2p.peer.peerinfo import PeerInfo

from ledger import SigningKey, encode
from p2p import Host, HostOptions, Inbound, Member, open_host, peer_id_for, protocol_for
from p2p._host import YAMUX_CREDIT_ENV

KEYS = [SigningKey(bytes([i + 1]) * 32) for i in range(5)]
OUTSIDER = SigningKey(b"\x99" * 32)
DEADLINE_S = 20


def run(fn: Callable[[], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        with trio.fail_after(DEADLINE_S):
            return await fn()
    return trio.run(main)


def tcp_port(addr: str) -> int:
    return int(multiaddr.Multiaddr(addr).value_for_protocol("tcp"))


@asynccontextmanager
async def mesh(n: int, options: HostOptions | None = None,
               members: list[SigningKey] | None = None) -> AsyncIterator[list[Host]]:
    """n hosts, all members of one consortium (plus `members` that are listed but not started),
    started one after the other so that each knows the previous ones' ports."""
    keys = KEYS[:n]
    listed = keys + (members or [])
    hosts: list[Host] = []
    async with AsyncExitStack() as stack:
        known: dict[bytes, tuple[str, ...]] = {}
        for key in keys:
            roster = [Member(public_key=k.public, addrs=known.get(k.public, ())) for k in listed]
            h = await stack.enter_async_context(open_host(key, roster, options))
            known[key.public] = tuple(a.split("/p2p/")[0] for a in h.listen_addrs())
            hosts.append(h)
        for i, h in enumerate(hosts):
            for j in range(i):
                await h.wait_connected(hosts[j].public_key)
        yield hosts


async def recv(host: Host, channel: str = "consensus") -> Inbound:
    return await host.inbox(channel).receive()


def test_Host_mesh_delivers_in_order_on_each_channel() -> None:
    async def main() -> None:
        async with mesh(3) as hosts:
            a, b, c = hosts
            for i in range(200):
                a.send(b.public_key, "consensus", "vote", encode(i))
            a.broadcast("tx", "txs", b"batch")
            got = [await recv(b) for _ in range(200)]
            assert [m.payload for m in got] == [encode(i) for i in range(200)]
            assert {m.peer for m in got} == {a.public_key}
            assert (await recv(b, "tx")).payload == b"batch"
            assert (await recv(c, "tx")).payload == b"batch"
            st = a.statistics()
            assert st.messages_sent >= 202
            assert st.frames_sent < st.messages_sent  # batched
            assert sorted(a.connected_peers()) == sorted([b.public_key, c.public_key])
    run(main)


def test_Host_request_response() -> None:
    async def main() -> None:
        async with mesh(2) as (a, b):
            async def handler(peer: bytes, payload: bytes) -> bytes:
                assert peer == a.public_key
                return payload[::-1]
            b.set_request_handler("sync", handler)
            assert await a.request(b.public_key, "sync", b"abc") == b"cba"
            assert b.statistics().requests_served == 1
    run(main)


def test_Host_outsider_cannot_connect_open_stream_or_send() -> None:
    async def main() -> None:
        async with mesh(2) as (a, b):
            # The outsider knows the members and accepts them; the members don't list it.
            roster = [Member(public_key=k.public) for k in KEYS[:2]]
            async with open_host(OUTSIDER, roster) as out:
                addr = multiaddr.Multiaddr(a.listen_addrs()[0].split("/p2p/")[0])
                with pytest.raises(Exception):  # noqa: B017 - libp2p raises its own types
                    await out._libp2p.connect(PeerInfo(peer_id_for(a.public_key), [addr]))
                assert out.connected_peers() == []
                with pytest.raises(Exception):  # noqa: B017
                    await out._libp2p.new_stream(peer_id_for(a.public_key),
                                                 [protocol_for("consensus")])
                out.send(a.public_key, "consensus", "vote", b"evil")
                # A member's message sent afterwards arrives; the outsider's never does.
                b.send(a.public_key, "consensus", "vote", b"good")
                assert (await recv(a)).payload == b"good"
                assert a.statistics().refused_handshakes >= 1
                assert a.statistics().messages_received == 1
    run(main)


def test_Host_outbound_handshake_refuses_non_member() -> None:
    async def main() -> None:
        # An outsider that lists `a` as a member, while `a` does not list it.
        async with mesh(1) as (a,), open_host(OUTSIDER, [Member(public_key=a.public_key)]) as out:
                addr = multiaddr.Multiaddr(out.listen_addrs()[0].split("/p2p/")[0])
                with pytest.raises(Exception):  # noqa: B017
                    await a._libp2p.connect(PeerInfo(peer_id_for(OUTSIDER.public), [addr]))
                assert a.statistics().refused_handshakes >= 1
                assert out.connected_peers() == []
    run(main)


def test_Host_drops_and_counts_oversized_and_malformed_frames() -> None:
    async def main() -> None:
        opts = HostOptions(max_frame_bytes=4096)
        async with mesh(2, opts) as (a, b):
            s = await b._libp2p.new_stream(peer_id_for(a.public_key), [protocol_for("consensus")])
            await s.write(struct.pack(">I", 100_000) + b"x" * 100_000)  # oversized: skipped
            await s.write(struct.pack(">I", 5) + b"\xc1\xc1\xc1\xc1\xc1")  # not msgpack
            await s.write(struct.pack(">I", 2) + b"\x91\x01")  # msgpack, but not a batch
            from p2p import encode_frame
            await s.write(encode_frame([("vote", b"after")]))
            m = await recv(a)
            assert m.payload == b"after"
            st = a.statistics()
            assert st.oversized_frames == 1
            assert st.malformed_frames == 2
            # the host still works both ways
            a.send(b.public_key, "consensus", "vote", b"back")
            assert (await recv(b)).payload == b"back"
    run(main)


def test_Host_full_inbox_drops_without_blocking_the_stream() -> None:
    async def main() -> None:
        opts = HostOptions(inbox_capacity=10)
        async with mesh(2, opts) as (a, b):
            for i in range(100):
                b.send(a.public_key, "consensus", "vote", encode(i))
            b.send(a.public_key, "tx", "txs", b"other channel")
            # Nobody reads a's consensus inbox; the tx channel still flows.
            assert (await recv(a, "tx")).payload == b"other channel"
            with trio.fail_after(5):
                while a.statistics().dropped_inbox_full < 90:
                    await trio.sleep(0.01)
            assert a.statistics().dropped_inbox_full == 90
    run(main)


def test_Host_reconnects_after_peer_restart() -> None:
    async def main() -> None:
        opts = HostOptions(reconnect_max_s=0.5)
        async with mesh(1, opts, members=[KEYS[1]]) as (a,):
            a_addr = tuple(x.split("/p2p/")[0] for x in a.listen_addrs())
            roster = [Member(public_key=KEYS[0].public, addrs=a_addr),
                      Member(public_key=KEYS[1].public)]
            for round_ in range(2):
                async with open_host(KEYS[1], roster, opts) as b:
                    await b.wait_connected(a.public_key)
                    await a.wait_connected(b.public_key)
                    a.send(b.public_key, "consensus", "vote", encode(round_))
                    assert (await recv(b)).payload == encode(round_)
                with trio.fail_after(5):
                    while a.is_connected(KEYS[1].public):
                        await trio.sleep(0.01)
    run(main)


def test_Host_stream_handler_refuses_non_member_past_the_handshake(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Defence in depth: even if the handshake let an outsider through, its streams are reset
    and nothing it sends reaches an inbox."""
    monkeypatch.setattr(Host, "_handshake_allows", lambda self, peer_id: True)

    async def main() -> None:
        async with mesh(2) as (a, b):
            roster = [Member(public_key=a.public_key,
                             addrs=(a.listen_addrs()[0].split("/p2p/")[0],))]
            async with open_host(OUTSIDER, roster) as out:
                await out.wait_connected(a.public_key)
                out.send(a.public_key, "consensus", "vote", b"evil")
                with trio.fail_after(5):
                    while a.statistics().refused_streams == 0:
                        await trio.sleep(0.01)
                b.send(a.public_key, "consensus", "vote", b"good")
                assert (await recv(a)).payload == b"good"
                assert a.statistics().messages_received == 1
    run(main)


def test_Host_outbox_for_an_absent_member_is_bounded_in_bytes() -> None:
    async def main() -> None:
        opts = HostOptions(outbox_bytes=10_000)
        async with mesh(1, opts, members=[KEYS[1]]) as (a,):
            for _ in range(50):
                a.send(KEYS[1].public, "tx", "txs", b"x" * 1000)
            assert a.statistics().dropped_outbox_full == 40
            a.broadcast("consensus", "tip", b"h", connected_only=True)
            assert a._peers[KEYS[1].public].outboxes["consensus"].queue == deque()
    run(main)



def test_open_host_batches_yamux_credit_unless_the_operator_chose(
        monkeypatch: pytest.MonkeyPatch) -> None:
    name, value = YAMUX_CREDIT_ENV
    for preset, want in ((None, value), ("1", "1")):
        if preset is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, preset)

        async def body(want: str = want) -> None:
            async with mesh(1):
                assert os.environ.get(name) == want

        run(body)
