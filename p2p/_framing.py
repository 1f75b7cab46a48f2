"""Length-prefixed frames that carry batches of messages over one long-lived libp2p stream.

Why our own framing: `stream.read(n)` on a yamux stream may return fewer bytes than asked, and
the library's `read_exactly` gives up after 100 partial reads, so the reader buffers and cuts
frames itself. Why batches: each frame costs about 0.2 ms of CPU in py-libp2p whatever its size,
so a writer drains everything queued for a peer into one frame.

Wire form: a 4-byte big-endian length `N`, then `N` bytes of canonical msgpack:
`[[kind, payload], ...]`, `kind` a short string (the message type), `payload` bytes (already
encoded by the layer above, so nothing is re-encoded on the way through).

`FrameDecoder` is sans-IO: feed it bytes, take complete batches out. A frame longer than
`max_frame_bytes` is skipped without being buffered (its bytes are discarded as they arrive),
and a frame whose body is not a well-formed batch is dropped: both are counted, neither stops the
stream, since the length prefix keeps the reader in step.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from ledger import decode, encode
from ledger.errors import DecodeError

HEADER = struct.Struct(">I")
MAX_FRAME_BYTES_DEFAULT = 16 * 1024 * 1024
MAX_KIND_CHARS = 32

Message = tuple[str, bytes]


def encode_frame(messages: Sequence[Message]) -> bytes:
    """One frame carrying `messages` in order."""
    body = encode([[kind, payload] for kind, payload in messages])
    return HEADER.pack(len(body)) + body


def frame_overhead(kind: str, payload_len: int) -> int:
    """An upper bound of what one message adds to a frame body (for batching to a byte budget)."""
    return payload_len + len(kind) + 16


def decode_batch(body: bytes) -> list[Message]:
    """The messages of one frame body.

    Raises:
        DecodeError: the body is not canonical msgpack or not a list of [str, bytes] pairs.
    """
    value = decode(body, max_bytes=len(body))
    if not isinstance(value, list):
        raise DecodeError("frame: expected a list of messages", code="frame_shape")
    out: list[Message] = []
    for item in value:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
                and 0 < len(item[0]) <= MAX_KIND_CHARS and isinstance(item[1], bytes)):
            raise DecodeError("frame: each message must be [kind, payload bytes]",
                              code="frame_shape")
        out.append((item[0], item[1]))
    return out


@dataclass(slots=True)
class FrameStats:
    frames: int = 0
    messages: int = 0
    bytes: int = 0
    oversized: int = 0
    malformed: int = 0


class FrameDecoder:
    """Cuts a byte stream into message batches; counts and skips bad frames."""

    def __init__(self, *, max_frame_bytes: int = MAX_FRAME_BYTES_DEFAULT,
                 stats: FrameStats | None = None) -> None:
        self.max_frame_bytes = max_frame_bytes
        self.stats = stats if stats is not None else FrameStats()
        self._buf = bytearray()
        self._skip = 0  # bytes of an oversized frame still to discard

    def feed(self, data: bytes) -> list[list[Message]]:
        """Take in `data`; return the batches of every frame it completed (bad ones left out)."""
        if self._skip:
            n = min(self._skip, len(data))
            self._skip -= n
            data = data[n:]
        self._buf += data
        out: list[list[Message]] = []
        while True:
            if self._skip:
                n = min(self._skip, len(self._buf))
                self._skip -= n
                del self._buf[:n]
                if self._skip:
                    break
            if len(self._buf) < HEADER.size:
                break
            (length,) = HEADER.unpack_from(self._buf)
            if length > self.max_frame_bytes:
                self.stats.oversized += 1
                del self._buf[:HEADER.size]
                self._skip = length
                continue
            if len(self._buf) < HEADER.size + length:
                break
            body = bytes(self._buf[HEADER.size:HEADER.size + length])
            del self._buf[:HEADER.size + length]
            self.stats.frames += 1
            self.stats.bytes += length
            try:
                batch = decode_batch(body)
            except DecodeError:
                self.stats.malformed += 1
                continue
            self.stats.messages += len(batch)
            out.append(batch)
        return out

    @property
    def buffered(self) -> int:
        return len(self._buf)
