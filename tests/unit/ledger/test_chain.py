"""Chain building: overlay semantics, rejected transactions dropped with nonces kept gap-free."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ledger import MemState, Overlay
from ledger._chain import ChainBuilder, DevConsortium, build_dev_chain, init_store
from ledger._replay import replay_store
from ledger.errors import ConfigError, ValidationError
from tests.unit.ledger.helpers import KVApp, kv_workload, make_consortium


def test_Overlay_reads_through_and_rolls_back() -> None:
    base = MemState({b"a": b"1", b"b": b"2"})
    o = Overlay(base)
    o.set(b"a", b"10")
    cp = o.checkpoint()
    o.delete(b"b")
    o.set(b"c", b"3")
    assert (o.get(b"a"), o.get(b"b"), o.get(b"c")) == (b"10", None, b"3")
    o.rollback(cp)
    assert (o.get(b"a"), o.get(b"b"), o.get(b"c")) == (b"10", b"2", None)
    assert o.writes == {b"a": b"10"}
    assert base.get(b"a") == b"1"
    base.apply({b"a": None, b"z": b"9"})
    assert list(base.iter_prefix(b"")) == [(b"b", b"2"), (b"z", b"9")]


def test_ChainBuilder_drops_rejected_and_keeps_nonces_gapless(tmp_path: Path) -> None:
    c = make_consortium()
    app = KVApp()
    with init_store(tmp_path / "db", c.genesis, app) as s:
        b = ChainBuilder(s, c.genesis, app, c.nodes)
        k = c.orgs[0]
        r = b.append_specs([(k, "put", {"key": "a", "value": "1"}),
                            (k, "del", {"key": "missing"}),
                            (k, "put", {"key": "b", "value": "2"})])
        assert [tx.nonce for tx in r.block.txs] == [0, 1]
        assert [x.code for x in r.rejected] == ["no_such_key"]
        assert s.get(b"kv/b") == b"2"
        assert b.append([]).height == 2  # an empty block is fine
        with pytest.raises(ValidationError):
            b.append([r.block.txs[0]])  # a replayed transaction is refused (nonce)
        assert s.height == 2
        assert replay_store(s, c.genesis, app).height == 2


def test_build_dev_chain_layout_and_replay(tmp_path: Path) -> None:
    rng = random.Random(4)
    cons = DevConsortium.generate(rng)
    assert len(cons.genesis.validators) == 4 and len(cons.validator_keys) == 4
    wl = kv_workload(rng, cons, 30)
    batches = [[next(wl) for _ in range(10)] for _ in range(3)]
    summary = build_dev_chain(tmp_path / "home", cons, KVApp(), batches)
    assert summary.height == 3 and summary.txs + summary.rejected == 30
    home = tmp_path / "home"
    assert (home / "genesis.json").is_file()
    for m in cons.members:
        assert (home / "consortium" / m.name / "node.key").is_file()
    with pytest.raises(ConfigError):
        build_dev_chain(home, cons, KVApp(), [])
