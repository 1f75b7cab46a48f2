"""Property: any sequence of valid and invalid inputs keeps the core's invariants (checked by
`_check_invariants` inside every `step`) and never makes it sign two different votes of one kind
for one (height, round)."""

from __future__ import annotations

from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consensus import (
    BlockCommittedBySync,
    Broadcast,
    CommitVote,
    Core,
    Decided,
    Input,
    MessageReceived,
    ProposalValidated,
    ProposalValueReady,
    Start,
    TimeoutFired,
    decode_message,
)
from ledger import Seal, sha256

from .helpers import CHAIN, block, config, keys
from .test_core import prep, proposal, rc


@cache
def pool() -> tuple[Input, ...]:
    k = keys(4)
    blocks = [block(h, r, t) for h in (1, 2) for r in (0, 1) for t in (b"a", b"b")]
    items: list[Input] = [Start(), MessageReceived(msg=b"junk"),
                          MessageReceived(msg=b"\x81\xa1v\x01")]
    for blk in blocks:
        h = sha256(blk)
        for height in (1, 2):
            for r in (0, 1, 2):
                items.append(MessageReceived(msg=proposal(
                    k[(height + r) % 4], height, r, blk).encode()))
                for j in (1, 2, 3):
                    items.append(MessageReceived(msg=prep(k[j], height, r, h).encode()))
                    items.append(MessageReceived(msg=CommitVote.sign(
                        k[j], chain=CHAIN, height=height, round_=r, block_hash=h).encode()))
            items.append(ProposalValidated(height=height, round=0, block_hash=h, ok=True))
            items.append(ProposalValidated(height=height, round=0, block_hash=h, ok=False))
            items.append(ProposalValueReady(height=height, round=0, block_hash=h,
                                            block_bytes=blk))
            cert = tuple(prep(k[j], height, 0, h) for j in (1, 2, 3))
            for j in (1, 2, 3):
                for r in (1, 2, 5):
                    items.append(MessageReceived(msg=rc(k[j], height, r).encode()))
                    items.append(MessageReceived(msg=rc(k[j], height, r, 0, blk, cert).encode()))
            votes = [CommitVote.sign(k[j], chain=CHAIN, height=height, round_=0, block_hash=h)
                     for j in (1, 2, 3)]
            seal = Seal.build(height=height, round_=0, block_hash=h,
                              votes=[(v.sender, v.sig) for v in votes])
            items.append(BlockCommittedBySync(height=height, block_hash=h, seal=seal))
            items.append(MessageReceived(msg=Decided(
                chain=CHAIN, height=height, block_hash=h, sender=k[1].public,
                seal=seal).encode()))
            bad = Seal.build(height=height, round_=0, block_hash=h,
                             votes=[(v.sender, v.sig) for v in votes[:2]])
            items.append(BlockCommittedBySync(height=height, block_hash=h, seal=bad))
    for height in (1, 2, 3):
        for r in range(4):
            items.append(TimeoutFired(height=height, round=r))
    return tuple(items)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=60),
       st.integers(min_value=0, max_value=3))
def test_Core_arbitrary_inputs_keep_invariants(choices: list[int], who: int) -> None:
    items = pool()
    core = Core(config(4), keys(4)[who])
    signed: dict[tuple[int, int, str], bytes] = {}
    for c in choices:
        for action in core.step(items[c % len(items)]):
            if isinstance(action, Broadcast):
                m = decode_message(action.msg)
                assert not isinstance(m, Decided)
                key = (m.height, m.round, m.kind)
                assert signed.setdefault(key, m.value) == m.value, key


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=0, max_value=2**16),
       st.sampled_from(["flip", "truncate", "append"]))
def test_decode_message_mutations_raise_only_decode_error(pick: int, where: int,
                                                          how: str) -> None:
    from ledger.errors import DecodeError

    wires = [i.msg for i in pool() if isinstance(i, MessageReceived)]
    data = wires[pick % len(wires)]
    i = where % len(data)
    if how == "flip":
        data = data[:i] + bytes([data[i] ^ 0x41]) + data[i + 1:]
    elif how == "truncate":
        data = data[:i]
    else:
        data = data + data[:i]
    try:
        decode_message(data)
    except DecodeError:
        pass
