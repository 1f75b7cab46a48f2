"""Inclusion proof bundles: one transaction, shown final with nothing but the genesis file.

A bundle is a JSON object (bytes as lowercase hex) holding the transaction's wire bytes, its
RFC 9162 Merkle path in its block, the block header's canonical bytes and the block's commit
seal. Verifying it checks, in order: the format, that every hex string is canonical lowercase
hex, the transaction's signature, the path against the header's `tx_root`, the header's chain
against the genesis chain id, and the seal against the genesis validators. Every field of the
bundle is covered by one of these checks, so any changed character makes verification fail.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ledger._block import BlockHeader, Seal, verify_seal
from ledger._codec import decode
from ledger._merkle import inclusion_proof, verify_inclusion
from ledger._tx import Transaction, verify_transactions
from ledger.errors import DecodeError, VerificationError

PROOF_FORMAT = 1
_FIELDS = frozenset({"format", "chain_id", "height", "tx_id", "tx", "index", "tx_count", "path",
                     "header", "block_hash", "seal"})
_HEX = re.compile(r"\A(?:[0-9a-f]{2})*\Z")


def build_bundle(header: BlockHeader, txs: Sequence[bytes], seal: Seal, index: int
                 ) -> dict[str, Any]:
    """The proof bundle for transaction `index` of the block with `header` and the
    transactions' wire bytes `txs` (`Block.parts`: only that one transaction is decoded),
    finalised by `seal`."""
    leaves = list(txs)
    tx = Transaction.decode(leaves[index])
    return {
        "format": PROOF_FORMAT,
        "chain_id": header.chain.hex(),
        "height": header.height,
        "tx_id": tx.tx_id.hex(),
        "tx": leaves[index].hex(),
        "index": index,
        "tx_count": len(leaves),
        "path": [p.hex() for p in inclusion_proof(index, leaves)],
        "header": header.encode().hex(),
        "block_hash": header.hash.hex(),
        "seal": seal.encode().hex(),
    }


def _hex(bundle: dict[str, Any], name: str) -> bytes:
    value = bundle[name]
    if not isinstance(value, str) or not _HEX.match(value):
        raise DecodeError(f"proof: {name} must be lowercase hex", code="proof_shape")
    return bytes.fromhex(value)


def _int(bundle: dict[str, Any], name: str) -> int:
    value = bundle[name]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise DecodeError(f"proof: {name} must be a non-negative integer", code="proof_shape")
    return value


def verify_bundle(bundle: Any, *, chain_id: bytes, validators: Sequence[bytes]) -> Transaction:
    """Check a bundle; return the proven transaction.

    Raises:
        DecodeError: the bundle is not of the expected shape or format.
        VerificationError: a signature, the Merkle path, the chain or the seal does not check out.
    """
    if not isinstance(bundle, dict):
        raise DecodeError("proof: expected a JSON object", code="proof_shape")
    if set(bundle) != _FIELDS:
        raise DecodeError(f"proof: fields missing or unknown: {sorted(set(bundle) ^ _FIELDS)}",
                          code="proof_shape")
    if bundle["format"] != PROOF_FORMAT or isinstance(bundle["format"], bool):
        raise DecodeError(f"proof: format {bundle['format']!r} is not supported",
                          code="unknown_version")
    if not isinstance(bundle["path"], list):
        raise DecodeError("proof: path must be a list", code="proof_shape")
    tx_bytes = _hex(bundle, "tx")
    path = []
    for i, p in enumerate(bundle["path"]):
        if not isinstance(p, str) or not _HEX.match(p) or len(p) != 64:
            raise DecodeError(f"proof: path[{i}] must be 32 bytes of lowercase hex",
                              code="proof_shape")
        path.append(bytes.fromhex(p))
    header = BlockHeader.from_obj(decode(_hex(bundle, "header")))
    seal = Seal.decode(_hex(bundle, "seal"))
    index, tx_count, height = _int(bundle, "index"), _int(bundle, "tx_count"), _int(bundle, "height")

    tx = Transaction.decode(tx_bytes)
    if _hex(bundle, "tx_id") != tx.tx_id:
        raise VerificationError("proof: tx_id does not match the transaction", code="proof_tx_id")
    if not verify_transactions([tx])[0]:
        raise VerificationError("proof: the transaction's signature is invalid",
                                code="bad_tx_signature")
    if _hex(bundle, "chain_id") != chain_id or header.chain != chain_id or tx.chain != chain_id:
        raise VerificationError("proof: the block or transaction is not of this genesis' chain",
                                code="wrong_chain")
    if header.height != height or header.tx_count != tx_count:
        raise VerificationError("proof: height or tx_count disagree with the block header",
                                code="proof_header")
    if _hex(bundle, "block_hash") != header.hash:
        raise VerificationError("proof: block_hash is not the hash of the header",
                                code="proof_header")
    if not verify_inclusion(tx_bytes, index, tx_count, path, header.tx_root):
        raise VerificationError("proof: the Merkle path does not lead to the block's tx_root",
                                code="proof_path")
    verify_seal(seal, chain=chain_id, block_hash=header.hash, height=header.height,
                validators=validators)
    return tx
