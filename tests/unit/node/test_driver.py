"""The consensus driver persists what it voted before the vote leaves the node.

One real node (store, executor, core) of a 4-validator genesis, driven through `Node._step`
with a recording stand-in for the libp2p host: at the moment each vote is handed to the network,
`data/consensus/state.bin` must already list that vote.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from cli.node import Node, NodeConfig
from cli.node._devnet import create_devnet
from cli.node._persist import load_consensus_state
from consensus import _events as ev
from consensus._messages import PROPOSAL, decode_message
from ledger import ConsensusParams, Home


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
        self.sent.append((msg.kind, msg.round, getattr(msg, "value", b""), persisted))

    def send(self, peer: bytes, channel: str, kind: str, payload: bytes) -> None:
        self.broadcast(channel, kind, payload)

    def is_connected(self, peer: bytes) -> bool:
        return True


def test_driver_persists_each_vote_before_broadcasting_it(tmp_path: Path) -> None:
    net = create_devnet(tmp_path / "net", nodes=4, config=NodeConfig.for_testing(),
                        consensus=ConsensusParams(timeout_ms=1000, max_block_txs=10,
                                                  block_interval_ms=10))
    # validators[(height + round) % n] proposes: member 1 proposes height 1, round 0
    home = Home.at(net.nodes[1].home)
    node = Node.open(home, NodeConfig.load(home.config_path))
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

    try:
        trio.run(main)
    finally:
        node.close()
    kinds = [k for k, *_ in host.sent]
    assert PROPOSAL in kinds and "prepare" in kinds and "round_change" in kinds, kinds
    for kind, round_, value, persisted in host.sent:
        if kind == PROPOSAL:
            continue
        assert persisted is not None, f"{kind} sent before any state was persisted"
        assert (round_, kind, value) in persisted.sent or (kind == "round_change" and any(
            r == round_ and k == kind for r, k, _v in persisted.sent)), (kind, persisted)
