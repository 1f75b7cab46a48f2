"""Proposals are sized by measured execution time, so a loaded node does not propose blocks
that outlast the round (every validator would time out and the work would be thrown away)."""

from __future__ import annotations

from pathlib import Path

import trio

from cli.node import Node, NodeConfig
from cli.node._devnet import create_devnet
from ledger import ConsensusParams, Home


def test_proposal_size_follows_the_measured_cost_per_transaction(tmp_path: Path) -> None:
    net = create_devnet(tmp_path / "net", nodes=4, config=NodeConfig.for_testing(),
                        consensus=ConsensusParams(timeout_ms=2000, max_block_txs=5000,
                                                  block_interval_ms=10))
    home = Home.at(net.nodes[0].home)
    node = Node.open(home, NodeConfig.load(home.config_path))
    try:
        assert node.proposal_max_txs() == 5000  # nothing measured yet: the genesis cap

        async def execute(seconds_per_tx: float, txs: int) -> None:
            async def work() -> None:
                await trio.sleep(seconds_per_tx * txs)
            await node._timed("validate", work(), txs=txs)

        trio.run(execute, 0.002, 200)  # 2 ms per transaction: 0.1 * 2 s / 2 ms = 100
        assert 80 <= node.proposal_max_txs() <= 120
        for _ in range(20):  # a faster machine (or less load): blocks grow back to the cap
            trio.run(execute, 0.00001, 200)
        assert node.proposal_max_txs() == 5000
        for _ in range(2):  # very slow: never below the floor, so the chain progresses
            trio.run(execute, 0.01, 32)
        assert node.proposal_max_txs() == 64
        trio.run(execute, 0.2, 1)  # a block of 1 transaction is not a measurement
        assert node.proposal_max_txs() == 64
    finally:
        node.close()
