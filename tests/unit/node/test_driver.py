"""The consensus driver persists what it voted before the vote leaves the node.

One real node (store, executor, core) of a 4-validator genesis, driven through `Node._step`
with a recording stand-in for the libp2p host: at the moment each vote is handed to the network,
the newest consensus state on disk must already list that vote.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from cli.node import Node
from cli.node._persist import load_consensus_state
from consensus import _events as ev
from consensus._messages import PROPOSAL, decode_message
from tests.node_helpers import devnet_node


class RecordingHost:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.sent: list[tuple[str, int, bytes, Any]] = []  # (kind, round, value, persisted)

    def broadcast(self, channel: str, kind: str, payload: bytes, to: Any = None) -> None:
        if kind != "c":
            return
        msg = decode_message(payload)
        raw = load_consensus_state(self.node.home.consensus_dir)
        persisted = None if raw is None else ev.PersistedState.decode(raw)
        self.sent.append((msg.kind, getattr(msg, "round", -1), getattr(msg, "value", b""), persisted))

    def send(self, peer: bytes, channel: str, kind: str, payload: bytes) -> None:
        self.broadcast(channel, kind, payload)

    def is_connected(self, peer: bytes) -> bool:
        return True


def _drive(node: Node) -> RecordingHost:
    """Start the node's core, build its proposal for height 1, then let round 0 time out."""
    host = RecordingHost(node)
    node.host = host  # type: ignore[assignment]

    async def main() -> None:
        await node._step(ev.Start())
        assert node._proposal_wanted is not None
        req, node._proposal_wanted = node._proposal_wanted, None
        await node._build(req)
        while True:  # feed what the node queued for itself (its own proposal value)
            try:
                inp = node._queue_recv.receive_nowait()
            except trio.WouldBlock:
                break
            await node._step(inp)
        # no peers answer: the round times out and the node votes ROUND-CHANGE
        await node._step(ev.TimeoutFired(height=1, round=0))

    trio.run(main)
    return host


def test_driver_persists_each_vote_before_broadcasting_it(tmp_path: Path) -> None:
    # validators[(height + round) % n] proposes: member 1 proposes height 1, round 0
    with devnet_node(tmp_path, member=1, timeout_ms=1000, max_block_txs=10) as (_net, node):
        host = _drive(node)
    kinds = [k for k, *_ in host.sent]
    assert PROPOSAL in kinds and "prepare" in kinds and "round_change" in kinds, kinds
    for kind, round_, value, persisted in host.sent:
        if kind == PROPOSAL:
            continue
        assert persisted is not None, f"{kind} sent before any state was persisted"
        assert (round_, kind, value) in persisted.sent or (kind == "round_change" and any(
            r == round_ and k == kind for r, k, _v in persisted.sent)), (kind, persisted)
