"""The node's libp2p host: permissioned, framed, batched, and never blocking its consumers.

Shape of the traffic (see docs/architecture.md, "Node runtime"):

- **Channels** (`consensus`, `tx`, ...): one long-lived outbound stream per peer per channel,
  protocol `/partledger/<channel>/1.0.0`. `send()` only appends to that peer's outbox (bounded:
  the oldest message is dropped and counted when full); a writer task per peer and channel drains
  everything queued into one frame (batching is what makes py-libp2p fast enough: a frame costs
  about 0.2 ms of CPU whatever it carries). A write error drops the stream; the writer opens a new
  one once the peer is connected again.
- **Inbound**: the stream handler of each channel reads frames with its own buffered loop and
  puts each message into the channel's bounded trio memory channel with `send_nowait`; when the
  consumer is behind, the message is dropped and counted. A stalled consumer therefore never
  stalls a stream (yamux resets streams whose reader stalls for 5 s) and never blocks consensus.
- **Requests** (block sync): one short stream per request, one frame each way.
- **Connections**: a connector task per member with known addresses dials with exponential
  back-off (with jitter) whenever the member is not connected. To avoid simultaneous dials, the
  member with the smaller peer id dials first; the other side dials too if no connection appears
  within a grace period.
- **Permissioning**: `MemberNoise` refuses non-members in the handshake (both directions), and
  every stream handler checks the authenticated peer id again (defence in depth).
- **Flow-control credit**: yamux returns receive-window credit to the sender in batches of
  half the window (go-yamux's rule) instead of after every read (py-libp2p's default): each
  credit is a frame of its own through Noise, and the node reads once per message
  (`YAMUX_CREDIT_ENV`).

Peers are named by their 32-byte node public key (the genesis identity), never by libp2p ids, in
everything this module exposes.
"""

from __future__ import annotations

import logging
import os
import random
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import IHost, INetConn, INetStream, INetwork, INotifee
from libp2p.custom_types import TProtocol
from libp2p.network.config import ConnectionConfig
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux

from ledger import SigningKey
from p2p._framing import (
    MAX_FRAME_BYTES_DEFAULT,
    FrameDecoder,
    FrameStats,
    Message,
    encode_frame,
    frame_overhead,
)
from p2p._identity import keypair_for, peer_id_for
from p2p._logging import route_libp2p_logging
from p2p._security import NOISE_PROTOCOL_ID, MemberNoise

log = logging.getLogger("partledger.p2p")

READ_CHUNK = 256 * 1024
# Receive-window credit only in batches of half the window (not also after every read): the
# credit frames were as many as the messages they answered; 15 s saturation windows 8,007 /
# 8,027 -> 8,199 / 8,075 tx/s, p99 at 100 tx/s 47-54 -> 34-35 ms (docs/performance.md)
YAMUX_CREDIT_ENV = ("PY_YAMUX_RELEASE_ON_READ", "0")
PROTOCOL_PREFIX = "/partledger/"


def protocol_for(name: str) -> TProtocol:
    return TProtocol(f"{PROTOCOL_PREFIX}{name}/1.0.0")


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """A consortium node this host may talk to: its node key and where it listens."""

    public_key: bytes
    addrs: tuple[str, ...] = ()  # multiaddrs such as /ip4/127.0.0.1/tcp/4001 (no /p2p part)


@dataclass(frozen=True, slots=True, kw_only=True)
class HostOptions:
    listen: tuple[str, ...] = ("/ip4/127.0.0.1/tcp/0",)
    channels: tuple[str, ...] = ("consensus", "tx")
    max_frame_bytes: int = MAX_FRAME_BYTES_DEFAULT
    batch_bytes: int = 1024 * 1024
    inbox_capacity: int = 8192
    outbox_capacity: int = 8192
    outbox_bytes: int = 64 * 1024 * 1024
    reconnect_min_s: float = 0.1
    reconnect_max_s: float = 5.0
    dial_grace_s: float = 1.0
    dial_timeout_s: float = 5.0
    write_timeout_s: float = 10.0
    request_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Inbound:
    """A message received from a member over a channel."""

    peer: bytes
    kind: str
    payload: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class HostStatistics:
    peers: int
    frames_sent: int
    messages_sent: int
    bytes_sent: int
    frames_received: int
    messages_received: int
    bytes_received: int
    dropped_inbox_full: int
    dropped_outbox_full: int
    dropped_send_failed: int
    oversized_frames: int
    malformed_frames: int
    refused_handshakes: int
    refused_streams: int
    dial_failures: int
    requests_served: int
    request_failures: int

    @property
    def dropped_total(self) -> int:
        return (self.dropped_inbox_full + self.dropped_outbox_full + self.dropped_send_failed
                + self.oversized_frames + self.malformed_frames)


@dataclass(slots=True)
class _Counters:
    frames_sent: int = 0
    messages_sent: int = 0
    bytes_sent: int = 0
    dropped_inbox_full: int = 0
    dropped_outbox_full: int = 0
    dropped_send_failed: int = 0
    refused_handshakes: int = 0
    refused_streams: int = 0
    dial_failures: int = 0
    requests_served: int = 0
    request_failures: int = 0
    inbound: FrameStats = field(default_factory=FrameStats)


class _Outbox:
    """Messages waiting for one peer on one channel; bounded in count and bytes, oldest
    dropped first (a peer that is down must not make this node run out of memory)."""

    def __init__(self, capacity: int, capacity_bytes: int) -> None:
        self.capacity = capacity
        self.capacity_bytes = capacity_bytes
        self.queue: deque[Message] = deque()
        self.bytes = 0
        self.nonempty = trio.Event()

    def put(self, msg: Message) -> int:
        """Queue `msg`; returns how many older messages were dropped to make room."""
        dropped = 0
        size = len(msg[1])
        while self.queue and (len(self.queue) >= self.capacity
                              or self.bytes + size > self.capacity_bytes):
            self.bytes -= len(self.queue.popleft()[1])
            dropped += 1
        self.queue.append(msg)
        self.bytes += size
        self.nonempty.set()
        return dropped

    def take(self, budget_bytes: int) -> list[Message]:
        out: list[Message] = []
        used = 0
        while self.queue:
            kind, payload = self.queue[0]
            cost = frame_overhead(kind, len(payload))
            if out and used + cost > budget_bytes:
                break
            out.append(self.queue.popleft())
            self.bytes -= len(payload)
            used += cost
        if not self.queue:
            self.nonempty = trio.Event()
        return out


class _PeerState:
    def __init__(self, member: Member, channels: Sequence[str], outbox_capacity: int,
                 outbox_bytes: int) -> None:
        self.member = member
        self.peer_id = peer_id_for(member.public_key)
        self.connected = trio.Event()
        self.disconnected = trio.Event()
        self.disconnected.set()
        self.generation = 0  # bumped on every new connection: streams of older ones are dead
        self.outboxes = {ch: _Outbox(outbox_capacity, outbox_bytes) for ch in channels}


RequestHandler = Callable[[bytes, bytes], Awaitable[bytes]]


class Host:
    """A running permissioned host; make one with `open_host`."""

    def __init__(self, key: SigningKey, members: Iterable[Member], options: HostOptions) -> None:
        self.options = options
        self.public_key = key.public
        self.peer_id = peer_id_for(key.public)
        self._peers: dict[bytes, _PeerState] = {}
        self._by_id: dict[ID, bytes] = {}
        for m in members:
            if m.public_key == key.public:
                continue
            ps = _PeerState(m, options.channels, options.outbox_capacity, options.outbox_bytes)
            self._peers[m.public_key] = ps
            self._by_id[ps.peer_id] = m.public_key
        self._c = _Counters()
        self._inbox_send: dict[str, trio.MemorySendChannel[Inbound]] = {}
        self._inbox_recv: dict[str, trio.MemoryReceiveChannel[Inbound]] = {}
        for ch in options.channels:
            s, r = trio.open_memory_channel[Inbound](options.inbox_capacity)
            self._inbox_send[ch], self._inbox_recv[ch] = s, r
        self._request_handlers: dict[str, RequestHandler] = {}
        kp = keypair_for(key)
        self._libp2p: IHost = new_host(
            key_pair=kp,
            sec_opt={NOISE_PROTOCOL_ID: MemberNoise(kp, is_member=self._handshake_allows,
                                                    on_refused=self._on_refused)},
            muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
            connection_config=ConnectionConfig(max_connections_per_peer=1,
                                               dial_timeout=options.dial_timeout_s),
        )
        for ch in options.channels:
            self._libp2p.set_stream_handler(protocol_for(ch), self._channel_handler(ch))
        self._libp2p.get_network().register_notifee(_Notifee(self))
        _disable_auto_connector(self._libp2p.get_network())

    # -- membership --------------------------------------------------------------------------

    def _handshake_allows(self, peer_id: ID) -> bool:
        return peer_id in self._by_id

    def _on_refused(self, peer_id: ID) -> None:
        self._c.refused_handshakes += 1
        log.info("refused handshake from non-member %s", peer_id)

    def _member_of(self, stream: INetStream) -> bytes | None:
        pub = self._by_id.get(stream.muxed_conn.peer_id)
        if pub is None:
            self._c.refused_streams += 1
        return pub

    # -- public API ---------------------------------------------------------------------------

    @property
    def members(self) -> list[bytes]:
        """Public keys of every other member this host knows."""
        return list(self._peers)

    def listen_addrs(self) -> list[str]:
        """Full multiaddrs (ending in /p2p/<peer id>) this host listens on."""
        return [str(a) for a in self._libp2p.get_addrs()]

    def connected_peers(self) -> list[bytes]:
        return [pk for pk, ps in self._peers.items() if ps.connected.is_set()]

    def is_connected(self, peer: bytes) -> bool:
        ps = self._peers.get(peer)
        return ps is not None and ps.connected.is_set()

    async def wait_connected(self, peer: bytes) -> None:
        await self._peers[peer].connected.wait()

    def inbox(self, channel: str) -> trio.MemoryReceiveChannel[Inbound]:
        return self._inbox_recv[channel]

    def send(self, peer: bytes, channel: str, kind: str, payload: bytes) -> None:
        """Queue one message for `peer`; never blocks (drops the oldest queued when full)."""
        ps = self._peers.get(peer)
        if ps is None:
            raise KeyError(f"{peer.hex()[:16]} is not a member")
        self._c.dropped_outbox_full += ps.outboxes[channel].put((kind, payload))

    def broadcast(self, channel: str, kind: str, payload: bytes,
                  to: Iterable[bytes] | None = None, *, connected_only: bool = False) -> None:
        """Queue one message for every member (or those in `to`), not for this node.

        `connected_only` skips members not connected right now (for messages that are stale
        by the time a peer comes back, such as tip announcements)."""
        for peer in (self._peers if to is None else to):
            if peer == self.public_key:
                continue
            if connected_only and not self.is_connected(peer):
                continue
            self.send(peer, channel, kind, payload)

    def set_request_handler(self, name: str, handler: RequestHandler) -> None:
        """Serve requests on protocol `name`: `handler(peer, payload) -> response bytes`."""
        self._request_handlers[name] = handler
        self._libp2p.set_stream_handler(protocol_for(name), self._request_stream_handler(name))

    async def request(self, peer: bytes, name: str, payload: bytes,
                      timeout_s: float | None = None) -> bytes:
        """Send one request to `peer` and return its response.

        Raises:
            ConnectionError: not connected, stream failure, malformed or missing response.
            trio.TooSlowError: no response within the timeout.
        """
        ps = self._peers.get(peer)
        if ps is None or not ps.connected.is_set():
            raise ConnectionError(f"peer {peer.hex()[:16]} is not connected")
        with trio.fail_after(timeout_s or self.options.request_timeout_s):
            try:
                stream = await self._libp2p.new_stream(ps.peer_id, [protocol_for(name)])
            except Exception as exc:  # libp2p raises many unrelated types
                self._c.request_failures += 1
                raise ConnectionError(f"cannot open a {name} stream: {exc}") from exc
            try:
                await stream.write(encode_frame([("req", payload)]))
                batch = await _read_one_frame(stream, self.options.max_frame_bytes)
            except Exception as exc:
                self._c.request_failures += 1
                raise ConnectionError(f"{name} request failed: {exc}") from exc
            finally:
                await _close_quietly(stream)
        if batch is None or len(batch) != 1 or batch[0][0] != "resp":
            self._c.request_failures += 1
            raise ConnectionError(f"{name}: malformed response")
        return batch[0][1]

    def statistics(self) -> HostStatistics:
        c = self._c
        return HostStatistics(
            peers=len(self.connected_peers()), frames_sent=c.frames_sent,
            messages_sent=c.messages_sent, bytes_sent=c.bytes_sent,
            frames_received=c.inbound.frames, messages_received=c.inbound.messages,
            bytes_received=c.inbound.bytes, dropped_inbox_full=c.dropped_inbox_full,
            dropped_outbox_full=c.dropped_outbox_full, dropped_send_failed=c.dropped_send_failed,
            oversized_frames=c.inbound.oversized, malformed_frames=c.inbound.malformed,
            refused_handshakes=c.refused_handshakes, refused_streams=c.refused_streams,
            dial_failures=c.dial_failures, requests_served=c.requests_served,
            request_failures=c.request_failures)

    # -- stream handlers ----------------------------------------------------------------------

    def _channel_handler(self, channel: str) -> Callable[[INetStream], Awaitable[None]]:
        async def handler(stream: INetStream) -> None:
            peer = self._member_of(stream)
            if peer is None:
                await _reset_quietly(stream)
                return
            sink = self._inbox_send[channel]
            decoder = FrameDecoder(max_frame_bytes=self.options.max_frame_bytes,
                                   stats=self._c.inbound)
            try:
                while True:
                    data = await stream.read(READ_CHUNK)
                    if not data:
                        break
                    for batch in decoder.feed(data):
                        for kind, payload in batch:
                            try:
                                sink.send_nowait(Inbound(peer=peer, kind=kind, payload=payload))
                            except trio.WouldBlock:
                                self._c.dropped_inbox_full += 1
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            except Exception as exc:  # EOF/reset/etc.: the writer side reconnects
                log.debug("%s stream from %s ended: %r", channel, peer.hex()[:16], exc)
            finally:
                await _close_quietly(stream)
        return handler

    def _request_stream_handler(self, name: str) -> Callable[[INetStream], Awaitable[None]]:
        async def handler(stream: INetStream) -> None:
            peer = self._member_of(stream)
            if peer is None:
                await _reset_quietly(stream)
                return
            try:
                with trio.fail_after(self.options.request_timeout_s):
                    batch = await _read_one_frame(stream, self.options.max_frame_bytes)
                    if batch is None or len(batch) != 1 or batch[0][0] != "req":
                        self._c.inbound.malformed += 1
                        await _reset_quietly(stream)
                        return
                    response = await self._request_handlers[name](peer, batch[0][1])
                    await stream.write(encode_frame([("resp", response)]))
                    self._c.requests_served += 1
            except Exception as exc:  # a bad request never takes the node down
                log.debug("%s request from %s failed: %r", name, peer.hex()[:16], exc)
                await _reset_quietly(stream)
                return
            await _close_quietly(stream)
        return handler

    # -- background tasks ---------------------------------------------------------------------

    async def _writer(self, ps: _PeerState, channel: str) -> None:
        outbox = ps.outboxes[channel]
        stream: INetStream | None = None
        generation = -1
        backoff = self.options.reconnect_min_s
        while True:
            await outbox.nonempty.wait()
            if stream is not None and (generation != ps.generation
                                       or not ps.connected.is_set()):
                await _reset_quietly(stream)  # it belonged to a connection that has gone
                stream = None
            if stream is None:
                await ps.connected.wait()
                try:
                    with trio.fail_after(self.options.dial_timeout_s):
                        generation = ps.generation
                        stream = await self._libp2p.new_stream(ps.peer_id,
                                                               [protocol_for(channel)])
                    backoff = self.options.reconnect_min_s
                except Exception as exc:
                    log.debug("cannot open %s stream to %s: %r", channel,
                              ps.member.public_key.hex()[:16], exc)
                    await trio.sleep(backoff * (0.5 + random.random()))
                    backoff = min(backoff * 2, self.options.reconnect_max_s)
                    continue
            batch = outbox.take(self.options.batch_bytes)
            if not batch:
                continue
            frame = encode_frame(batch)
            try:
                with trio.fail_after(self.options.write_timeout_s):
                    await stream.write(frame)
            except Exception as exc:
                log.debug("%s stream to %s broke: %r", channel, ps.member.public_key.hex()[:16],
                          exc)
                self._c.dropped_send_failed += len(batch)
                await _reset_quietly(stream)
                stream = None
                continue
            self._c.frames_sent += 1
            self._c.messages_sent += len(batch)
            self._c.bytes_sent += len(frame)

    async def _connector(self, ps: _PeerState) -> None:
        addrs = [multiaddr.Multiaddr(a) for a in ps.member.addrs]
        backoff = self.options.reconnect_min_s
        we_dial_first = self.peer_id.to_bytes() < ps.peer_id.to_bytes()
        while True:
            if ps.connected.is_set():
                await ps.disconnected.wait()
                backoff = self.options.reconnect_min_s
                continue
            if not we_dial_first:
                with trio.move_on_after(self.options.dial_grace_s):
                    await ps.connected.wait()
                if ps.connected.is_set():
                    continue
            try:
                await self._libp2p.connect(PeerInfo(ps.peer_id, addrs))
                backoff = self.options.reconnect_min_s
            except Exception as exc:
                self._c.dial_failures += 1
                log.debug("dial %s failed: %r", ps.member.public_key.hex()[:16], exc)
                await trio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, self.options.reconnect_max_s)
                continue
            # Wait for the notifee to confirm; if it never does, try again after a while.
            with trio.move_on_after(self.options.dial_timeout_s):
                await ps.connected.wait()

    def _note_connected(self, peer_id: ID) -> None:
        pub = self._by_id.get(peer_id)
        if pub is None:
            return
        ps = self._peers[pub]
        if not ps.connected.is_set():
            ps.generation += 1
            ps.disconnected = trio.Event()
            ps.connected.set()
            log.info("connected to %s", pub.hex()[:16])

    def _note_disconnected(self, peer_id: ID) -> None:
        pub = self._by_id.get(peer_id)
        if pub is None:
            return
        if self._libp2p.get_network().get_connections(peer_id):
            return
        ps = self._peers[pub]
        if ps.connected.is_set():
            ps.connected = trio.Event()
            ps.disconnected.set()
            log.info("disconnected from %s", pub.hex()[:16])

    async def _run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for ps in self._peers.values():
                for ch in self.options.channels:
                    nursery.start_soon(self._writer, ps, ch)
                if ps.member.addrs:
                    nursery.start_soon(self._connector, ps)
            task_status.started()

    async def _shutdown(self) -> None:
        for ch in self._inbox_send.values():
            await ch.aclose()
        for ps in self._peers.values():
            if ps.connected.is_set():
                with trio.move_on_after(1):
                    try:
                        await self._libp2p.disconnect(ps.peer_id)
                    except Exception:
                        pass


class _Notifee(INotifee):
    def __init__(self, host: Host) -> None:
        self._host = host

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self._host._note_connected(conn.muxed_conn.peer_id)

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self._host._note_disconnected(conn.muxed_conn.peer_id)

    async def listen(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        pass

    async def listen_close(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        pass


def _disable_auto_connector(network: INetwork) -> None:
    """py-libp2p 0.8.1 keeps dialling every peer in its peerstore towards a watermark of 100
    connections (and logs each round at INFO). Our connectors dial exactly the members, with
    back-off, so its rounds are turned into no-ops."""
    auto = getattr(network, "auto_connector", None)
    if auto is not None:
        async def _no_op() -> None:
            return None
        auto.maybe_connect = _no_op


async def _read_one_frame(stream: INetStream, max_frame_bytes: int) -> list[Message] | None:
    decoder = FrameDecoder(max_frame_bytes=max_frame_bytes)
    while True:
        try:
            data = await stream.read(READ_CHUNK)
        except Exception:  # EOF before a whole frame
            return None
        if not data:
            return None
        batches = decoder.feed(data)
        if batches:
            return batches[0]
        if decoder.stats.malformed or decoder.stats.oversized:
            return None


async def _close_quietly(stream: INetStream) -> None:
    with trio.move_on_after(1):
        try:
            await stream.close()
        except Exception:
            pass


async def _reset_quietly(stream: INetStream) -> None:
    with trio.move_on_after(1):
        try:
            await stream.reset()
        except Exception:
            pass


@asynccontextmanager
async def open_host(key: SigningKey, members: Iterable[Member],
                    options: HostOptions | None = None) -> AsyncIterator[Host]:
    """Run a permissioned host for the node `key` among `members` until the block exits.

    `members` lists every node of the consortium (validators and observers), this node
    included or not; only these peer ids complete a handshake with it.
    """
    route_libp2p_logging()
    # py-libp2p reads its yamux tuning from the environment at each use; an operator's own
    # setting wins
    os.environ.setdefault(*YAMUX_CREDIT_ENV)
    opts = options or HostOptions()
    host = Host(key, members, opts)
    listen = [multiaddr.Multiaddr(a) for a in opts.listen]
    async with host._libp2p.run(listen), trio.open_nursery() as nursery:
        await nursery.start(host._run)
        try:
            yield host
        finally:
            nursery.cancel_scope.cancel()
            with trio.CancelScope(shield=True):
                await host._shutdown()
