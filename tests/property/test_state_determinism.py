"""Applying the same blocks on two stores gives identical state roots (and state).

Hypothesis picks the workload seed, its length, how it is cut into blocks and which
transactions are replayed (stale nonces, duplicate events). A "proposer" executes each block on
an in-memory state and keeps only accepted transactions; the resulting blocks are then committed
to a real LevelDB store through the chain builder (a different reader, a fresh application
instance): every state root and the whole final state must be identical.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import BlockContext, SigningKey, Transaction, next_state_root, sha256
from ledger._chain import ChainBuilder, init_store
from ledger._memstate import MemState
from ledger.provenance import ProvenanceApp, make_genesis, synthetic_workload

MEMBERS = [("a", ("validator", "member")), ("b", ("validator", "member", "recycler")),
           ("c", ("validator", "member", "authority")), ("d", ("certifier",))]
SEED = b"prop"
GENESIS, KEYS = make_genesis(MEMBERS, seed=SEED)
NAMES = [m for m, _ in MEMBERS]
NODE_KEYS = [SigningKey(sha256(SEED + b"/node/" + m.encode())) for m, r in MEMBERS
             if "validator" in r]
TIME0 = GENESIS.genesis_time_ms


def _txs(seed: int, n: int) -> list[Transaction]:
    nonces: dict[str, int] = {}
    out = []
    for idx, kind, body in synthetic_workload(random.Random(seed), GENESIS, n):
        assert isinstance(idx, int)
        name = NAMES[idx]
        k = nonces.get(name, 0)
        nonces[name] = k + 1
        out.append(Transaction.create(KEYS[name], chain=GENESIS.chain_id, kind=kind,
                                      body=body, nonce=k))
    return out


def _cuts(n: int, sizes: list[int]) -> list[tuple[int, int]]:
    out, i = [], 0
    for s in sizes:
        if i >= n:
            break
        out.append((i, min(n, i + s)))
        i += s
    if i < n:
        out.append((i, n))
    return out


def _propose(txs: list[Transaction], cuts: list[tuple[int, int]]
             ) -> tuple[MemState, list[list[Transaction]], list[bytes], list[str]]:
    """Execute block by block, keeping only accepted transactions (what a proposer does)."""
    app = ProvenanceApp()
    state = MemState()
    gw = app.genesis_writes(GENESIS)
    state.apply(gw)
    root = next_state_root(bytes(32), gw)
    blocks, roots, codes = [], [], []
    for h, (i, j) in enumerate(cuts, start=1):
        ctx = BlockContext(chain=GENESIS.chain_id, height=h, time_ms=TIME0 + 500 * h,
                           proposer=b"\x00" * 32)
        ex = app.execute(state, ctx, txs[i:j])
        codes += [r.code for r in ex.results]
        kept = [t for t, r in zip(txs[i:j], ex.results, strict=True) if r.ok]
        ex = app.execute(state, ctx, kept)
        assert ex.all_ok
        state.apply(ex.writes)
        root = next_state_root(root, ex.writes)
        blocks.append(kept)
        roots.append(root)
    return state, blocks, roots, codes


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), n=st.integers(5, 80),
       sizes=st.lists(st.integers(1, 30), min_size=1, max_size=6),
       replays=st.lists(st.integers(0, 79), max_size=3))
def test_same_blocks_same_roots_on_two_stores(tmp_path_factory: Any, seed: int, n: int,
                                              sizes: list[int], replays: list[int]) -> None:
    txs = _txs(seed, n)
    for c in replays:
        if c < len(txs):
            txs.insert(c + 1, txs[c // 2])      # an old transaction again: must be refused
    cuts = _cuts(len(txs), sizes)
    mem, blocks, roots, codes = _propose(txs, cuts)
    assert codes.count("ok") == n
    assert set(codes) <= {"ok", "bad_nonce"}

    path = Path(tmp_path_factory.mktemp("det")) / "db"
    app = ProvenanceApp()
    with init_store(path, GENESIS, app) as store:
        b = ChainBuilder(store, GENESIS, app, NODE_KEYS)
        for h, blk in enumerate(blocks, start=1):
            block = b.append(blk, time_ms=TIME0 + 500 * h)
            assert block.header.state_root == roots[h - 1]
        assert dict(store.iter_prefix(b"")) == mem.items()


def _comparable(state: MemState) -> dict[bytes, bytes]:
    # event, passport and proposal records carry the block height/time they were recorded
    # at; objects, indexes and nonces do not depend on how transactions are cut into blocks
    return {k: v for k, v in state.items().items()
            if k.startswith((b"obj/", b"g", b"xe/", b"es/", b"nonce/", b"meta/", b"tf/"))}


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**32), n=st.integers(5, 80),
       sizes=st.lists(st.integers(1, 30), min_size=1, max_size=6))
def test_block_boundaries_do_not_change_objects_or_genealogy(seed: int, n: int,
                                                             sizes: list[int]) -> None:
    txs = _txs(seed, n)
    one, _, _, codes1 = _propose(txs, [(0, len(txs))])
    many, _, _, codes2 = _propose(txs, _cuts(len(txs), sizes))
    assert set(codes1) == set(codes2) == {"ok"}
    assert one.items().keys() == many.items().keys()
    assert _comparable(one) == _comparable(many)
