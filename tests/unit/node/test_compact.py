"""Compact proposals (cli/node/_compact.py): a proposal rebuilt from the transactions a
validator holds is byte-for-byte the proposer's message, and nothing else is accepted."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from cli.node._compact import (
    decode_tx_request,
    decode_tx_response,
    encode_tx_request,
    make_compact,
    missing_ids,
    parse_compact,
    rebuild,
)
from consensus import Prepare, Proposal
from ledger import Block, SigningKey, Transaction, decode, encode, sha256
from ledger._block import BlockHeader, tx_root
from ledger.errors import DecodeError
from tests.node_helpers import signed_txs

CHAIN = sha256(b"compact-test-chain")
PROPOSER = SigningKey.generate()


def _block(txs: list[Transaction]) -> Block:
    header = BlockHeader(chain=CHAIN, height=7, prev_hash=sha256(b"prev"), time_ms=1_700_000,
                         proposer=PROPOSER.public, tx_root=tx_root(txs), tx_count=len(txs),
                         state_root=sha256(b"state"), validators_hash=sha256(b"vals"))
    return Block(header=header, txs=tuple(txs))


def _proposal(block: Block, key: SigningKey = PROPOSER) -> bytes:
    return Proposal.sign(key, chain=CHAIN, height=7, round_=0, block_hash=block.hash,
                         block=block.encode()).encode()


@pytest.fixture(scope="module")
def txs() -> list[Transaction]:
    return signed_txs(SigningKey.generate(), CHAIN, 40)


def _pool(txs: list[Transaction]) -> dict[bytes, Transaction]:
    return {tx.tx_id: tx for tx in txs}


def _compact(block: Block) -> bytes:
    out = make_compact(_proposal(block), lambda data: block if data == block.encode() else None)
    assert out is not None
    return out


def test_rebuild_gives_the_proposers_exact_message(txs: list[Transaction]) -> None:
    block = _block(txs)
    msg = _proposal(block)
    compact = make_compact(msg, lambda data: block if data == block.encode() else None)
    assert compact is not None and len(compact) < len(msg) // 4
    c = parse_compact(compact)
    assert c.block_hash == block.hash and c.sender == PROPOSER.public
    assert missing_ids(c, _pool(txs).get) == []
    rebuilt, data, full = rebuild(c, _pool(txs).get)
    assert full == msg
    assert data == block.encode() and rebuilt.hash == block.hash


def test_missing_transactions_are_named(txs: list[Transaction]) -> None:
    c = parse_compact(_compact(_block(txs)))
    pool = _pool(txs[::2])
    assert missing_ids(c, pool.get) == [tx.tx_id for tx in txs[1::2]]
    with pytest.raises(KeyError):
        rebuild(c, pool.get)


def test_a_transaction_with_other_bytes_under_the_same_id_is_refused(
        txs: list[Transaction]) -> None:
    c = parse_compact(_compact(_block(txs)))
    forged = dataclasses.replace(txs[3], sig=bytes(64), raw=b"")  # same id, other bytes
    assert forged.tx_id == txs[3].tx_id and forged.encode() != txs[3].encode()
    pool = _pool(txs) | {forged.tx_id: forged}
    with pytest.raises(DecodeError) as exc:
        rebuild(c, pool.get)
    assert exc.value.code == "compact_tx_root"


def test_only_known_proposals_are_compacted(txs: list[Transaction]) -> None:
    block = _block(txs)
    assert make_compact(_proposal(block), lambda data: None) is None
    other = _block(txs[:5])
    assert make_compact(_proposal(block), lambda data: other) is None  # another block's hash
    vote = Prepare.sign(PROPOSER, chain=CHAIN, height=7, round_=0, block_hash=block.hash)
    assert make_compact(vote.encode(), lambda data: block) is None
    assert make_compact(b"\x00garbage", lambda data: block) is None


def _edit(compact: bytes, fn: Any) -> bytes:
    m = decode(compact)
    fn(m)
    return encode(m)


@pytest.mark.parametrize(("edit", "code"), [
    (lambda m: m.update(v=2), "compact_version"),
    (lambda m: m.pop("ids"), "compact_shape"),
    (lambda m: m.update(extra=1), "compact_shape"),
    (lambda m: m["proposal"].update(block=b"x"), "compact_shape"),
    (lambda m: m.update(ids=m["ids"][:-1]), "compact_shape"),
    (lambda m: m.update(ids=[*m["ids"][:-1], b"short"]), "compact_shape"),
    (lambda m: m.update(ids=[m["ids"][0]] * 20_001), "compact_shape"),
    (lambda m: m["header"].update(time_ms=m["header"]["time_ms"] + 1), "compact_header"),
    (lambda m: m["header"].pop("tx_root"), "header_shape"),
])
def test_malformed_compact_proposals_are_refused(txs: list[Transaction], edit: Any,
                                                 code: str) -> None:
    bad = _edit(_compact(_block(txs)), edit)
    with pytest.raises(DecodeError) as exc:
        parse_compact(bad)
    assert exc.value.code == code


def test_non_canonical_compact_is_refused(txs: list[Transaction]) -> None:
    with pytest.raises(DecodeError):
        parse_compact(_compact(_block(txs)) + b"\x00")
    with pytest.raises(DecodeError):
        parse_compact(encode([1, 2]))


def test_tx_request_and_response(txs: list[Transaction]) -> None:
    ids = [tx.tx_id for tx in txs[:3]]
    assert decode_tx_request(encode_tx_request(ids)) == ids
    for bad in (encode({"ids": [b"x"]}), encode([]), encode({"ids": [ids[0]] * 20_001})):
        with pytest.raises(DecodeError):
            decode_tx_request(bad)
    # the peer answers in request order, empty for one it lacks, and a wrong tx is dropped
    resp = encode([txs[0].encode(), b"", txs[5].encode()])
    got = decode_tx_response(resp, ids)
    assert got == {ids[0]: txs[0]}
    with pytest.raises(DecodeError):
        decode_tx_response(encode([txs[0].encode()]), ids)
