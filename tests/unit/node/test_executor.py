"""The executor on a real LevelDB store with the provenance state machine."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from cli.node._executor import CommittedNonces, Executor, state_next_nonce
from ledger import (
    Block,
    ConsensusParams,
    Genesis,
    Member,
    Seal,
    SigningKey,
    sign_commit,
    tx_root,
)
from ledger._chain import default_application, init_store
from ledger.errors import VerificationError
from tests.node_helpers import commission_tx, signed_txs

ORG, NODE = SigningKey(b"\x11" * 32), SigningKey(b"\x12" * 32)
GENESIS = Genesis.create(chain_name="t", genesis_time_ms=1_000, consensus=ConsensusParams(),
                         members=[Member(name="acme", org_key=ORG.public, node_key=NODE.public,
                                         addresses=(), roles=("validator", "member"))])


def executor(tmp_path: Path) -> Executor:
    store = init_store(tmp_path / "ledger", GENESIS, default_application())
    return Executor(store, default_application(), GENESIS, clock_ms=lambda: 5_000)


def seal(block: Block) -> Seal:
    sig = sign_commit(NODE, GENESIS.chain_id, block.height, 0, block.hash)
    return Seal.build(height=block.height, round_=0, block_hash=block.hash,
                      votes=[(NODE.public, sig)])


def test_Executor_build_validate_commit(tmp_path: Path) -> None:
    ex = executor(tmp_path)
    txs = signed_txs(ORG, GENESIS.chain_id, 3)
    dup = commission_tx(ORG, GENESIS.chain_id, 3, txs[0].body["epcList"][0].rsplit(".", 1)[1])
    built = ex.build(proposer=NODE.public, candidates=[*txs, dup])
    assert [t.tx_id for t in built.block.txs] == [t.tx_id for t in txs]
    assert [r.tx_id for r in built.rejected] == [dup.tx_id]
    assert ex.validate(built.block).ok
    tip = ex.commit(built.block, seal(built.block))
    assert tip.height == 1 and tip.state_root == built.block.header.state_root
    assert state_next_nonce(ex.store, ORG.public) == 3


def test_CommittedNonces_remembers_answers_only_while_the_height_stays(tmp_path: Path) -> None:
    ex = executor(tmp_path)
    nonces = CommittedNonces(ex.store)
    assert nonces(ORG.public) == 0
    reads: list[bytes] = []
    real_get = ex.store.get
    ex.store.get = lambda key: reads.append(key) or real_get(key)  # type: ignore[method-assign]
    assert nonces(ORG.public) == 0 and reads == []  # same height: no store read
    built = ex.build(proposer=NODE.public, candidates=signed_txs(ORG, GENESIS.chain_id, 3))
    ex.commit(built.block, seal(built.block))
    reads.clear()
    assert nonces(ORG.public) == 3 == state_next_nonce(ex.store, ORG.public)
    assert b"nonce/" + ORG.public in reads  # the height moved: read again


def test_Executor_refuses_blocks_that_do_not_check_out(tmp_path: Path) -> None:
    ex = executor(tmp_path)
    good = ex.build(proposer=NODE.public,
                    candidates=signed_txs(ORG, GENESIS.chain_id, 2)).block
    h = good.header
    forged_tx = dataclasses.replace(good.txs[0], sig=b"\x00" * 64, raw=b"")
    cases = {
        "bad_state_root": Block(header=dataclasses.replace(h, state_root=b"\x01" * 32),
                                txs=good.txs),
        "bad_link": Block(header=dataclasses.replace(h, prev_hash=b"\x02" * 32), txs=good.txs),
        "wrong_height": Block(header=dataclasses.replace(h, height=2), txs=good.txs),
        "bad_proposer": Block(header=dataclasses.replace(h, proposer=ORG.public), txs=good.txs),
        "bad_time": Block(header=dataclasses.replace(h, time_ms=10**12), txs=good.txs),
        "tx_root": Block(header=h, txs=(good.txs[1], good.txs[0])),
        "tx_count": Block(header=h, txs=good.txs[:1]),
        "bad_tx_signature": Block(header=dataclasses.replace(
            h, tx_root=tx_root([forged_tx, good.txs[1]])), txs=(forged_tx, good.txs[1])),
    }
    for code, block in cases.items():
        verdict = ex.validate(block)
        assert not verdict.ok and verdict.code == code, (code, verdict)
    # only the transactions named unverified are checked (the node names those its mempool
    # has not admitted byte for byte)
    forged = cases["bad_tx_signature"]
    assert ex.validate(forged, unverified=[forged_tx]).code == "bad_tx_signature"
    assert ex.validate(forged, unverified=[good.txs[1]]).ok
    assert ex.store.height == 0


def test_Executor_apply_synced_checks_the_seal(tmp_path: Path) -> None:
    src = executor(tmp_path / "a")
    built = src.build(proposer=NODE.public, candidates=signed_txs(ORG, GENESIS.chain_id, 2))
    s = seal(built.block)
    src.commit(built.block, s)
    dst = executor(tmp_path / "b")
    other = SigningKey(b"\x13" * 32)
    bad = Seal.build(height=1, round_=0, block_hash=built.block.hash,
                     votes=[(other.public, sign_commit(other, GENESIS.chain_id, 1, 0,
                                                       built.block.hash))])
    with pytest.raises(VerificationError):
        dst.apply_synced(built.block.encode(), bad.encode())
    assert dst.store.height == 0
    block, _seal, tip = dst.apply_synced(built.block.encode(), s.encode())
    assert tip.block_hash == built.block.hash and block.height == 1


def test_Executor_apply_synced_names_divergence_apart_from_a_bad_peer(tmp_path: Path) -> None:
    """A sealed next block that does not execute here is this node's problem (code diverged,
    the node stops); a sealed header with another body, or another height, is the peer's."""
    src = executor(tmp_path / "a")
    built = src.build(proposer=NODE.public, candidates=signed_txs(ORG, GENESIS.chain_id, 2))
    h = built.block.header
    wrong_root = Block(header=dataclasses.replace(h, state_root=b"\x01" * 32),
                       txs=built.block.txs)
    later = Block(header=dataclasses.replace(h, height=2), txs=built.block.txs)
    other_body = Block(header=h, txs=built.block.txs[:1])
    dst = executor(tmp_path / "b")
    for block, code in ((wrong_root, "diverged"), (later, "wrong_height"),
                        (other_body, "tx_count")):
        with pytest.raises(VerificationError) as err:
            dst.apply_synced(block.encode(), seal(block).encode())
        assert err.value.code == code, (code, err.value)
    assert dst.store.height == 0
