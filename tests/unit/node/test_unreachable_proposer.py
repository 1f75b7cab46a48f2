"""A round whose proposer this node cannot reach times out early (when a quorum is reachable),
so one stopped validator does not stall every n-th height for a whole round timeout."""

from __future__ import annotations

from pathlib import Path

import trio

from cli.node._node import UNREACHABLE_PROPOSER_TIMEOUT_MS
from consensus import _events as ev
from tests.node_helpers import devnet_node


class ConnectedTo:
    """The one host method the timer rule asks: which peers are connected."""

    def __init__(self, peers: set[bytes]) -> None:
        self.peers = peers

    def is_connected(self, peer: bytes) -> bool:
        return peer in self.peers


def test_a_round_with_an_unreachable_proposer_times_out_early(tmp_path: Path) -> None:
    with devnet_node(tmp_path) as (_net, node):
        assert node.core is not None
        cfg = node.core.config
        me = node.node_key.public
        # a height and round proposed by another validator, and one proposed by this node
        h, r = next((h, 0) for h in range(1, 10) if cfg.proposer(h, 0) != me)
        mine = next((h2, 0) for h2 in range(1, 10) if cfg.proposer(h2, 0) == me)
        proposer = cfg.proposer(h, r)
        others = [v for v in node.other_validators() if v != proposer]

        def scheduled_after_ms(height: int, round_: int, connected: set[bytes]) -> float:
            node.host = ConnectedTo(connected)  # type: ignore[assignment]

            async def go() -> float:
                now = trio.current_time()
                await node._execute(ev.ScheduleTimeout(height=height, round=round_,
                                                       after_ms=2000))
                assert node._timer is not None
                return (node._timer[0] - now) * 1000
            return trio.run(go)

        # everyone reachable: the full timeout
        assert scheduled_after_ms(h, r, {proposer, *others}) >= 1990
        # the proposer is down, the other two are up (3 of 4 = a quorum): early
        assert scheduled_after_ms(h, r, set(others)) <= UNREACHABLE_PROPOSER_TIMEOUT_MS + 10
        # the proposer is down and so is another validator: no quorum to change rounds with,
        # so waiting the full timeout costs nothing (and avoids racing through rounds at start)
        assert scheduled_after_ms(h, r, set(others[:1])) >= 1990
        # this node proposes: never shortened
        assert scheduled_after_ms(*mine, set()) >= 1990
