"""Fuzz targets: each takes arbitrary bytes and must either accept them or raise a clean
`PartledgerError`. Anything else — another exception, a hang, unbounded memory — is a bug.

Each target also names seed inputs (valid examples) that the fuzzers mutate, so that the
interesting paths past the first length check are reached.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from ledger import (
    Block,
    BlockHeader,
    Seal,
    SigningKey,
    Transaction,
    decode,
    sha256,
    sign_commit,
    tx_root,
    validators_hash,
)
from ledger._proof import build_bundle, verify_bundle

CHAIN = sha256(b"fuzz chain")
_VALIDATORS = [SigningKey(bytes([i + 1]) * 32) for i in range(4)]
_ORG = SigningKey(bytes([9]) * 32)


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], object]
    seeds: Callable[[], list[bytes]]


def _sample_block() -> tuple[Block, Seal]:
    txs = tuple(Transaction.create(_ORG, chain=CHAIN, kind="ObjectEvent",
                                   body={"action": "ADD", "epcList": [f"urn:epc:id:sgtin:1.2.{i}"]},
                                   nonce=i) for i in range(3))
    header = BlockHeader(chain=CHAIN, height=1, prev_hash=CHAIN, time_ms=1,
                         proposer=_VALIDATORS[0].public, tx_root=tx_root(txs), tx_count=3,
                         state_root=bytes(32),
                         validators_hash=validators_hash([v.public for v in _VALIDATORS]))
    block = Block(header=header, txs=txs)
    votes = [(v.public, sign_commit(v, CHAIN, 1, 0, block.hash)) for v in _VALIDATORS[:3]]
    return block, Seal.build(height=1, round_=0, block_hash=block.hash, votes=votes)


def _seeds_codec() -> list[bytes]:
    block, seal = _sample_block()
    return [block.encode(), seal.encode(), block.txs[0].encode()]


def _proof_json(data: bytes) -> object:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return None  # not JSON: the CLI refuses it before verification
    return verify_bundle(doc, chain_id=CHAIN, validators=[v.public for v in _VALIDATORS])


def _seeds_proof() -> list[bytes]:
    block, seal = _sample_block()
    return [json.dumps(build_bundle(block, seal, i)).encode() for i in range(3)]


TARGETS: dict[str, Target] = {t.name: t for t in [
    Target("codec", decode, _seeds_codec),
    Target("transaction", Transaction.decode, lambda: [_seeds_codec()[2]]),
    Target("block", Block.decode, lambda: [_seeds_codec()[0]]),
    Target("seal", Seal.decode, lambda: [_seeds_codec()[1]]),
    Target("proof_bundle", _proof_json, _seeds_proof),
]}
