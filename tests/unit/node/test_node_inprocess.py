"""Four real nodes (libp2p hosts, LevelDB stores, HTTP APIs) in one trio.run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from cli.node import Node, NodeConfig
from cli.node._devnet import Devnet, create_devnet
from ledger import (
    BlockContext,
    ConsensusParams,
    Execution,
    Home,
    StateReader,
    Transaction,
    read_key_file,
)
from ledger.errors import VerificationError
from tests.node_helpers import signed_txs

FAST = ConsensusParams(timeout_ms=1000, max_block_txs=500, block_interval_ms=100)


def open_nodes(net: Devnet) -> list[Node]:
    return [Node.open(Home.at(n.home), NodeConfig.load(Home.at(n.home).config_path))
            for n in net.nodes]


async def run_nodes(nodes: list[Node], body: Any) -> Any:
    async with trio.open_nursery() as nursery:
        for node in nodes:
            await nursery.start(node.run)
        try:
            return await body()
        finally:
            for node in nodes:
                node.stop()


async def wait_height(nodes: list[Node], height: int, timeout_s: float = 30) -> None:
    with trio.fail_after(timeout_s):
        while min(n.store.height for n in nodes) < height:
            await trio.sleep(0.05)


def test_Node_four_validators_commit_submitted_txs(tmp_path: Path) -> None:
    net = create_devnet(tmp_path / "net", nodes=4, consensus=FAST,
                        config=NodeConfig.for_testing())
    nodes = open_nodes(net)
    key = read_key_file(net.nodes[0].org_key)
    txs = signed_txs(key, net.chain_id, 60)

    async def body() -> None:
        await wait_height(nodes, 1)
        async with httpx.AsyncClient() as client:
            for i, chunk in enumerate([txs[:20], txs[20:40], txs[40:]]):
                url = nodes[i].api_url
                r = await client.post(f"{url}/v1/txs",
                                      json={"txs": [t.encode().hex() for t in chunk]})
                assert r.status_code == 202, r.text
                assert r.json()["accepted"] == 20
            last = txs[-1].tx_id.hex()
            r = await client.get(f"{nodes[3].api_url}/v1/txs/{last}", params={"wait_ms": 20000})
            assert r.json()["status"] == "committed", r.text
        h = max(n.store.height for n in nodes)
        await wait_height(nodes, h)
        tips = {n.store.head() for n in nodes}
        assert len({(t.block_hash, t.state_root) for t in tips if t.height == h}) == 1
        for tx in txs:
            assert nodes[2].store.tx_location(tx.tx_id) is not None

    try:
        trio.run(run_nodes, nodes, body)
    finally:
        for n in nodes:
            n.close()


def test_Node_proposals_travel_compact_and_missing_txs_are_fetched(tmp_path: Path) -> None:
    """Transactions only node 0 holds (no fan-out) still commit: the other validators fetch
    them from node 0 to rebuild its compact proposal; fanned-out ones are rebuilt from the
    mempool alone."""
    net = create_devnet(tmp_path / "net", nodes=4, consensus=FAST,
                        config=NodeConfig.for_testing())
    nodes = open_nodes(net)
    key = read_key_file(net.nodes[0].org_key)
    hidden = signed_txs(key, net.chain_id, 30)
    shared = signed_txs(key, net.chain_id, 30, first_nonce=30)

    async def body() -> None:
        await wait_height(nodes, 1)
        verdicts = await nodes[0].submit(hidden, fan_out=False)
        assert all(v.ok for v in verdicts)
        assert all(len(n.mempool) == 0 for n in nodes[1:])
        with trio.fail_after(30):
            while not all(n.store.tx_location(tx.tx_id) for n in nodes for tx in hidden):
                await trio.sleep(0.05)
        assert sum(n.counters.compact_fetched_txs for n in nodes[1:]) >= len(hidden)
        # a malformed compact proposal from a validator is dropped and counted
        from cli.node._node import CH_CONSENSUS, KIND_COMPACT
        before = nodes[0].counters.dropped_malformed
        assert nodes[1].host is not None
        nodes[1].host.send(nodes[0].node_key.public, CH_CONSENSUS, KIND_COMPACT, b"\x93junk")
        with trio.fail_after(10):
            while nodes[0].counters.dropped_malformed == before:
                await trio.sleep(0.02)
        await nodes[1].submit(shared)
        with trio.fail_after(30):
            while not all(n.store.tx_location(tx.tx_id) for n in nodes for tx in shared):
                await trio.sleep(0.05)
        h = min(n.store.height for n in nodes)
        assert len({n.store.block(h).hash for n in nodes}) == 1  # type: ignore[union-attr]

    try:
        trio.run(run_nodes, nodes, body)
    finally:
        for n in nodes:
            n.close()
    assert sum(n.counters.compact_sent for n in nodes) >= 2
    assert sum(n.counters.compact_rebuilt for n in nodes) >= 2 * 3
    assert sum(n.counters.compact_failed for n in nodes) == 0
    # the fanned-out batch needed no fetch: only the hidden transactions were ever fetched
    assert sum(n.counters.compact_fetched_txs for n in nodes) <= len(hidden) * 3


def test_Node_that_diverged_stops_when_sync_brings_a_sealed_block_it_cannot_execute(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A block sealed by a quorum that does not execute here by sync, as by consensus, means
    this node's ledger has diverged: it stops, instead of asking for it again and again."""
    net = create_devnet(tmp_path / "net", nodes=1, observers=1, consensus=FAST,
                        config=NodeConfig.for_testing())
    validator, observer = open_nodes(net)
    real = observer.executor.app.execute

    def diverging(state: StateReader, ctx: BlockContext,
                  txs: Sequence[Transaction]) -> Execution:
        ex = real(state, ctx, txs)
        return Execution(writes={**ex.writes, b"x/diverged": b"\x01"}, results=ex.results)

    monkeypatch.setattr(observer.executor.app, "execute", diverging)
    key = read_key_file(net.nodes[0].org_key)

    async def body() -> None:
        await wait_height([validator], 1)
        await validator.submit(signed_txs(key, net.chain_id, 5))
        with trio.fail_after(30):
            await trio.sleep_forever()  # until the observer stops the run

    try:
        with pytest.raises(BaseExceptionGroup) as info:
            trio.run(run_nodes, [validator, observer], body)
    finally:
        validator.close()
        observer.close()
    mine, _rest = info.value.split(VerificationError)
    assert mine is not None, info.value
    codes = {e.code for e in _leaves(mine)}
    assert codes == {"diverged"}, codes
    assert observer.store.height == 0 and validator.store.height >= 1


def _leaves(group: BaseExceptionGroup[Any]) -> list[Any]:
    out: list[Any] = []
    for e in group.exceptions:
        out.extend(_leaves(e) if isinstance(e, BaseExceptionGroup) else [e])
    return out
