"""Proposals are sized by measured execution time, so a loaded node does not propose blocks
that outlast the round (every validator would time out and the work would be thrown away)."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.node_helpers import devnet_node


def test_proposal_size_follows_the_measured_cost_per_transaction(tmp_path: Path) -> None:
    with devnet_node(tmp_path, max_block_txs=5000) as (_net, node):
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


def test_a_transaction_that_arrived_during_the_last_height_does_not_wait_the_interval_again(
        tmp_path: Path) -> None:
    from ledger import read_key_file
    from tests.node_helpers import signed_txs

    interval = 0.1
    with devnet_node(tmp_path, block_interval_ms=100) as (net, node):
        now = node._last_commit_mono
        assert node._batch_ready_at(interval) == now + interval  # empty mempool
        tx = signed_txs(read_key_file(net.nodes[0].org_key), net.chain_id, 1)[0]
        assert trio.run(node.submit, [tx])[0].ok
        # pending since 80 ms before the last commit, after the one before it: ready 20 ms
        # after that commit instead of 100
        node._prev_commit_mono, node._last_commit_mono = now - 1.0, now
        node._admitted_at[tx.tx_id] = now - 0.08
        assert abs(node._batch_ready_at(interval) - (now + 0.02)) < 1e-9
        # pending since before the last height began (a nonce gap keeps it out of blocks):
        # it does not hurry the proposer
        node._prev_commit_mono = now - 0.05
        assert node._batch_ready_at(interval) == now + interval


def test_a_full_proposal_pending_is_built_without_waiting_the_interval(tmp_path: Path) -> None:
    from ledger import read_key_file
    from tests.node_helpers import signed_txs

    interval = 0.5
    with devnet_node(tmp_path, block_interval_ms=500, max_block_txs=4) as (net, node):
        now = node._last_commit_mono
        node._prev_commit_mono = now  # every pending tx "was there before the last height"
        txs = signed_txs(read_key_file(net.nodes[0].org_key), net.chain_id, 4)
        assert all(r.ok for r in trio.run(node.submit, txs[:3]))
        assert node._batch_ready_at(interval) == now + interval  # 3 of 4: wait for company
        assert trio.run(node.submit, txs[3:])[0].ok
        assert node._batch_ready_at(interval) == now  # a full block: nothing to wait for
