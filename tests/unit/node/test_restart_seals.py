"""A restarted validator still answers a laggard's ROUND-CHANGE for a height it decided before
the restart with that height's seal (DECIDED), from its store: the core alone forgets seals on
restart, so the node must hand them back (`recent_seals`)."""

from __future__ import annotations

from pathlib import Path

from cli.node import Node, NodeConfig
from cli.node._devnet import create_devnet
from cli.node._node import recent_seals
from consensus import _events as ev
from consensus._messages import Decided, RoundChange, decode_message
from ledger import ConsensusParams, Genesis, Home, read_key_file
from ledger._chain import ChainBuilder, default_application, init_store


def test_restarted_validator_hands_a_laggard_the_seal_of_a_height_decided_before(
        tmp_path: Path) -> None:
    net = create_devnet(tmp_path / "net", nodes=4, config=NodeConfig.for_testing(),
                        consensus=ConsensusParams(timeout_ms=1000, max_block_txs=10,
                                                  block_interval_ms=10))
    homes = [Home.at(n.home) for n in net.nodes]
    keys = [read_key_file(h.node_key_path) for h in homes]
    genesis = Genesis.load(homes[1].genesis_path)
    app = default_application()
    with init_store(homes[1].ledger_dir, genesis, app) as store:
        builder = ChainBuilder(store, genesis, app, keys)
        blocks = [builder.append([]) for _ in range(20)]
        kept = recent_seals(store, 16)
    assert [h for h, _, _ in kept] == list(range(5, 21))
    assert all(bh == blocks[h - 1].hash for h, bh, _ in kept)

    node = Node.open(homes[1], NodeConfig.load(homes[1].config_path))
    try:
        assert node.core is not None
        laggard = keys[2]
        for height, expect in ((18, True), (3, False)):
            rc = RoundChange.sign(laggard, chain=genesis.chain_id, height=height, round_=4,
                                  prepared_round=None, prepared_hash=None, prepared_block=None,
                                  prepares=())
            actions = node.core.step(ev.MessageReceived(msg=rc.encode()))
            sends = [a for a in actions if isinstance(a, ev.Send) and a.to == laggard.public]
            decided = [m for m in (decode_message(s.msg) for s in sends)
                       if isinstance(m, Decided)]
            if not expect:  # older than the 16 kept: nothing to hand out
                assert decided == []
                continue
            assert len(decided) == 1
            d = decided[0]
            assert (d.height, d.block_hash) == (height, blocks[height - 1].hash)
            assert d.seal.height == height and d.seal.block_hash == blocks[height - 1].hash
    finally:
        node.close()
