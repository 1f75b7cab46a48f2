"""Mempool admission, ordering and removal, with real signatures."""

from __future__ import annotations

import dataclasses

from cli.node._mempool import Mempool
from ledger import SigningKey, Transaction
from tests.node_helpers import commission_tx, signed_txs

CHAIN = b"\x07" * 32
ALICE, BOB = SigningKey(b"\x01" * 32), SigningKey(b"\x02" * 32)


def pool(state: dict[bytes, int] | None = None, committed: set[bytes] | None = None,
         **kw: int) -> Mempool:
    state = state if state is not None else {}
    done = committed if committed is not None else set()
    limits = {"max_txs": 100, "max_bytes": 1 << 20, "max_tx_bytes": 4096, "max_nonce_gap": 10}
    limits.update(kw)
    return Mempool(chain_id=CHAIN, next_nonce=lambda s: state.get(s, 0),
                   committed=lambda t: t in done, **limits)


def test_Mempool_admits_valid_and_rejects_with_reasons() -> None:
    mp = pool(committed=set())
    good = signed_txs(ALICE, CHAIN, 2)
    forged = dataclasses.replace(commission_tx(BOB, CHAIN, 0, "f"), sig=b"\x00" * 64)
    other_chain = commission_tx(BOB, b"\x08" * 32, 0, "c")
    verdicts = mp.add([*good, forged, other_chain, good[0]])
    assert [v.code for v in verdicts] == ["pending", "pending", "bad_signature", "wrong_chain",
                                          "duplicate"]
    assert [v.ok for v in verdicts] == [True, True, False, False, True]
    assert len(mp) == 2
    assert mp.rejection(forged.tx_id) is not None
    assert mp.rejection(forged.tx_id).code == "bad_signature"  # type: ignore[union-attr]


def test_Mempool_nonce_rules() -> None:
    state = {ALICE.public: 5}
    mp = pool(state)
    used = commission_tx(ALICE, CHAIN, 4, "a")
    ok = commission_tx(ALICE, CHAIN, 5, "b")
    same_nonce = commission_tx(ALICE, CHAIN, 5, "c")
    ahead = commission_tx(ALICE, CHAIN, 8, "d")
    too_far = commission_tx(ALICE, CHAIN, 17, "e")  # > 6 (end of the run 5) + gap 10
    codes = [v.code for v in mp.add([used, ok, same_nonce, ahead, too_far])]
    assert codes == ["nonce_used", "pending", "nonce_pending", "pending", "nonce_too_far"]
    assert mp.next_nonce(ALICE.public) == 6  # 5 pending, 6 free (8 is ahead of a gap)
    assert mp.next_nonce(BOB.public) == 0
    # a long contiguous run is fine however far it goes: the gap bounds holes, not runs
    run = signed_txs(BOB, CHAIN, 30)
    assert all(v.ok for v in pool().add(run))


def test_Mempool_select_keeps_arrival_order_and_per_signer_nonce_order() -> None:
    mp = pool()
    a = signed_txs(ALICE, CHAIN, 4, tag="a")
    b = signed_txs(BOB, CHAIN, 2, tag="b")
    # alice's 2 and 3 arrive before 0 and 1 (submitted to another node first)
    mp.add([a[2], a[3], b[0], a[0], b[1], a[1]])
    sel = mp.select(max_txs=100, max_bytes=1 << 20)
    # arrival order of each signer's first ready tx; then that signer's contiguous run
    assert [t.tx_id for t in sel] == [b[0].tx_id, b[1].tx_id, a[0].tx_id, a[1].tx_id,
                                      a[2].tx_id, a[3].tx_id]
    gap = pool()
    gap.add([a[1], a[2], b[0]])  # alice's nonce 0 is missing: none of hers can go
    assert [t.tx_id for t in gap.select(max_txs=100, max_bytes=1 << 20)] == [b[0].tx_id]
    assert len(mp.select(max_txs=3, max_bytes=1 << 20)) == 3


def test_Mempool_bounds_count_and_bytes_and_tx_size() -> None:
    txs = signed_txs(ALICE, CHAIN, 5)
    size = len(txs[0].encode())
    by_count = pool(max_txs=3)
    assert [v.code for v in by_count.add(txs)][-2:] == ["mempool_full", "mempool_full"]
    by_bytes = pool(max_bytes=2 * size + 10)
    assert [v.ok for v in by_bytes.add(txs)] == [True, True, False, False, False]
    small = pool(max_tx_bytes=size - 1)
    assert small.add(txs[:1])[0].code == "tx_too_large"


def test_Mempool_remove_prune_and_committed() -> None:
    state: dict[bytes, int] = {}
    done: set[bytes] = set()
    mp = pool(state, done)
    txs = signed_txs(ALICE, CHAIN, 3)
    mp.add(txs)
    mp.remove([txs[0].tx_id])
    done.add(txs[0].tx_id)
    state[ALICE.public] = 2  # someone's txs with nonces 0 and 1 were committed
    assert mp.prune_stale([ALICE.public]) == [txs[1].tx_id]
    assert mp.rejection(txs[1].tx_id).code == "nonce_used"  # type: ignore[union-attr]
    assert [t.tx_id for t in mp.select(max_txs=10, max_bytes=1 << 20)] == [txs[2].tx_id]
    assert mp.add([txs[0]])[0].code == "already_committed"
    mp.reject(txs[2].tx_id, "permission", "not allowed", height=7)
    assert len(mp) == 0 and mp.statistics().bytes == 0
    rej = mp.rejection(txs[2].tx_id)
    assert rej is not None and rej.height == 7 and rej.code == "permission"


def test_Mempool_held_only_for_same_bytes() -> None:
    mp = pool()
    tx = commission_tx(ALICE, CHAIN, 0, "x")
    mp.add([tx])
    # the same id with another signature: other bytes, so its signature is not checked yet
    forged = Transaction.from_obj({**tx.to_map(), "sig": bytes(64)})
    assert forged.tx_id == tx.tx_id and forged.encode() != tx.encode()
    assert mp.held([Transaction.decode(tx.encode()), tx, forged,
                    commission_tx(ALICE, CHAIN, 1, "y")]) == [True, True, False, False]


def test_Mempool_reads_a_signers_state_nonce_once_per_batch() -> None:
    state = {ALICE.public: 3}
    reads: list[bytes] = []

    def next_nonce(signer: bytes) -> int:
        reads.append(signer)
        return state.get(signer, 0)

    mp = Mempool(chain_id=CHAIN, next_nonce=next_nonce, committed=lambda t: False,
                 max_txs=100, max_bytes=1 << 20, max_tx_bytes=4096, max_nonce_gap=10)
    verdicts = mp.add([*signed_txs(ALICE, CHAIN, 4, first_nonce=3), *signed_txs(BOB, CHAIN, 3),
                       *signed_txs(ALICE, CHAIN, 1, first_nonce=1)])
    assert [v.code for v in verdicts] == ["pending"] * 7 + ["nonce_used"]
    assert sorted(reads) == sorted([ALICE.public, BOB.public])
    state[ALICE.public] = 7  # committed meanwhile: the next batch reads the state again
    assert mp.add(signed_txs(ALICE, CHAIN, 1, first_nonce=6))[0].code == "nonce_used"
    assert reads.count(ALICE.public) == 2


def test_Mempool_looks_up_committed_ids_only_for_used_nonces() -> None:
    """On a large ledger each lookup of an absent id costs LevelDB a charged read; a fresh
    nonce cannot belong to a committed transaction, so none is made for it."""
    asked: list[bytes] = []
    state = {ALICE.public: 2}
    mp = Mempool(chain_id=CHAIN, next_nonce=lambda s: state.get(s, 0),
                 committed=lambda t: asked.append(t) or False,
                 max_txs=100, max_bytes=1 << 20, max_tx_bytes=4096, max_nonce_gap=10)
    txs = signed_txs(ALICE, CHAIN, 4)  # nonces 0-3; 0 and 1 are used
    verdicts = mp.add(txs)
    assert [v.code for v in verdicts[:2]] == ["nonce_used", "nonce_used"]
    assert all(v.ok for v in verdicts[2:])
    assert asked == [txs[0].tx_id, txs[1].tx_id]
