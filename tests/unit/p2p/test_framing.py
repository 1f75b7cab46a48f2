"""The sans-IO frame decoder: split reads, batches, oversized and malformed frames."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from p2p import FrameDecoder, encode_frame

MSGS = st.lists(st.tuples(st.text(min_size=1, max_size=8), st.binary(max_size=300)),
                min_size=1, max_size=5)


@given(st.lists(MSGS, min_size=1, max_size=6), st.integers(min_value=1, max_value=64))
def test_FrameDecoder_reassembles_any_split(batches: list[list[tuple[str, bytes]]],
                                            chunk: int) -> None:
    wire = b"".join(encode_frame(b) for b in batches)
    dec = FrameDecoder()
    got = []
    for i in range(0, len(wire), chunk):
        got.extend(dec.feed(wire[i:i + chunk]))
    assert got == [list(b) for b in batches]
    assert dec.buffered == 0
    assert dec.stats.frames == len(batches)


def test_FrameDecoder_skips_oversized_frame_without_buffering_it() -> None:
    dec = FrameDecoder(max_frame_bytes=100)
    good = encode_frame([("a", b"x")])
    assert dec.feed(struct.pack(">I", 10_000) + b"y" * 5_000) == []
    assert dec.buffered == 0
    assert dec.feed(b"y" * 5_000 + good) == [[("a", b"x")]]
    assert dec.stats.oversized == 1


def test_FrameDecoder_drops_malformed_frames_and_stays_in_step() -> None:
    dec = FrameDecoder()
    bad = [b"\xc1", b"\x91\x01", b"\x91\x92\xa1a\x01", b"\x91\x92\xa0\xc4\x00",
           b"\x82\xa1a\x01\xa1a\x01"]
    wire = b"".join(struct.pack(">I", len(b)) + b for b in bad) + encode_frame([("k", b"v")])
    assert dec.feed(wire) == [[("k", b"v")]]
    assert dec.stats.malformed == len(bad)
