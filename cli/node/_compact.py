"""Compact proposals: the proposal's block travels as its header and transaction ids.

Every validator already holds nearly all of a proposal's transactions (the API fan-out sent
them a few milliseconds earlier), so sending each block's full transactions again to every
validator tripled the bytes of a busy height and made the proposal the slowest message of the
height (a ~360 KB proposal took 70-180 ms through py-libp2p on a busy 2-core machine). The
proposer sends `{v, proposal, header, ids}` instead: the signed proposal message with an empty
`block`, the block header, and the transaction ids in block order. A validator looks the ids
up in its mempool, rebuilds the block, and hands the core the full proposal message, exactly
the bytes the proposer's core produced.

Nothing here is trusted: the rebuilt block must have the header whose hash the proposer
signed (`block_hash`), and that header's `tx_root` (RFC 9162 root over the transactions' full
wire bytes, signatures included) and `tx_count` must match the transactions found, so a
rebuilt block is byte-for-byte the proposer's block or it is refused. Transactions a validator
does not hold are fetched from the proposer (`TXS_PROTOCOL`) and authenticated by the same
`tx_root` check; the core then checks the proposal's signature as for any proposal.

Pure functions; the node (`cli/node/_node.py`) does the waiting and the fetching.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from consensus import Proposal, decode_message
from ledger import Block, Transaction, decode, encode
from ledger._block import MAX_BLOCK_TXS, BlockHeader
from ledger.errors import DecodeError

COMPACT_VERSION = 1
TXS_PROTOCOL = "txs"
# a compact proposal is a header, a proposal's justification (round changes and prepares of
# at most a few hundred validators) and up to MAX_BLOCK_TXS ids of 32 bytes
MAX_COMPACT_BYTES = 4 * 1024 * 1024
_KEYS = frozenset({"v", "proposal", "header", "ids"})


@dataclass(frozen=True, slots=True, kw_only=True)
class CompactProposal:
    """A decoded compact proposal: shapes checked, nothing authenticated yet."""

    proposal: dict[str, Any]  # the proposal message's map, `block` empty
    header: BlockHeader
    ids: tuple[bytes, ...]

    @property
    def block_hash(self) -> bytes:
        value: bytes = self.proposal["block_hash"]
        return value

    @property
    def sender(self) -> bytes:
        value: bytes = self.proposal["sender"]
        return value


def make_compact(msg: bytes, block_of: Callable[[bytes], Block | None]) -> bytes | None:
    """The compact form of `msg`, a message this node's core produced; None when it is not a
    proposal or `block_of(block bytes)` does not know its block decoded (then send `msg` as
    it is)."""
    try:
        proposal = decode_message(msg)
    except DecodeError:
        return None
    if not isinstance(proposal, Proposal):
        return None
    block = block_of(proposal.block)
    if block is None or block.hash != proposal.block_hash:
        return None
    m = proposal.to_map()
    m["block"] = b""
    return encode({"v": COMPACT_VERSION, "proposal": m, "header": block.header.to_map(),
                   "ids": [tx.tx_id for tx in block.txs]})


def parse_compact(payload: bytes) -> CompactProposal:
    """Decode a compact proposal from a peer.

    Raises:
        DecodeError: not canonical, wrong shape or version, a header that does not hash to the
            proposal's `block_hash`, or more ids than a block may hold.
    """
    m = decode(payload, max_bytes=MAX_COMPACT_BYTES)
    if not isinstance(m, dict) or set(m) != _KEYS:
        raise DecodeError("compact proposal: expected a map with v, proposal, header, ids",
                          code="compact_shape")
    if m["v"] != COMPACT_VERSION:
        raise DecodeError(f"compact proposal: version {m['v']!r} is not supported",
                          code="compact_version")
    ids = m["ids"]
    if not isinstance(ids, list) or len(ids) > MAX_BLOCK_TXS or not all(
            isinstance(i, bytes) and len(i) == 32 for i in ids):
        raise DecodeError(f"compact proposal: ids must be a list of at most {MAX_BLOCK_TXS} "
                          "32-byte transaction ids", code="compact_shape")
    proposal = m["proposal"]
    if not isinstance(proposal, dict) or proposal.get("block") != b"":
        raise DecodeError("compact proposal: the proposal must carry an empty block",
                          code="compact_shape")
    header = BlockHeader.from_obj(m["header"])
    if header.hash != proposal.get("block_hash"):
        raise DecodeError("compact proposal: the header does not hash to the proposal's "
                          "block_hash", code="compact_header")
    if header.tx_count != len(ids):
        raise DecodeError(f"compact proposal: header counts {header.tx_count} transactions, "
                          f"{len(ids)} ids given", code="compact_shape")
    return CompactProposal(proposal=proposal, header=header, ids=tuple(ids))


def missing_ids(compact: CompactProposal,
                lookup: Callable[[bytes], Transaction | None]) -> list[bytes]:
    """The ids of `compact` that `lookup` (the mempool) does not hold."""
    return [i for i in compact.ids if lookup(i) is None]


def rebuild(compact: CompactProposal, lookup: Callable[[bytes], Transaction | None]
            ) -> tuple[Block, bytes, bytes]:
    """The block, its bytes and the full proposal message, from transactions `lookup` holds.

    Raises:
        KeyError: a transaction is missing (see `missing_ids`).
        DecodeError: the transactions found do not make the signed header's block (another
            transaction under one of the ids: same content, other signature bytes; or a
            proposer that lied), code `compact_tx_root`.
    """
    txs: list[Transaction] = []
    for i in compact.ids:
        tx = lookup(i)
        if tx is None:
            raise KeyError(i)
        txs.append(tx)
    block = Block(header=compact.header, txs=tuple(txs))
    if block.body_root() != compact.header.tx_root:
        raise DecodeError("compact proposal: the transactions do not match the header's "
                          "tx_root", code="compact_tx_root")
    data = block.encode()
    full = dict(compact.proposal)
    full["block"] = data
    return block, data, encode(full)


def encode_tx_request(ids: Sequence[bytes]) -> bytes:
    return encode({"ids": list(ids)})


def decode_tx_request(payload: bytes) -> list[bytes]:
    """Raises DecodeError for anything but a list of at most MAX_BLOCK_TXS 32-byte ids."""
    m = decode(payload, max_bytes=MAX_COMPACT_BYTES)
    ids = m.get("ids") if isinstance(m, dict) else None
    if not isinstance(ids, list) or len(ids) > MAX_BLOCK_TXS or not all(
            isinstance(i, bytes) and len(i) == 32 for i in ids):
        raise DecodeError("txs request: expected {ids: [32-byte ids]}", code="txs_shape")
    return ids


def decode_tx_response(payload: bytes, ids: Sequence[bytes]) -> dict[bytes, Transaction]:
    """The transactions a peer sent for `ids` (wire bytes in request order, empty for one it
    does not hold), by id; a transaction that is not the one asked for is dropped here (the
    block's tx_root check would refuse it anyway).

    Raises:
        DecodeError: the response is not a list of as many byte strings as ids asked for.
    """
    raws = decode(payload)
    if not isinstance(raws, list) or len(raws) != len(ids) or not all(
            isinstance(r, bytes) for r in raws):
        raise DecodeError("txs response: expected one byte string per id asked for",
                          code="txs_shape")
    out: dict[bytes, Transaction] = {}
    for want, raw in zip(ids, raws, strict=True):
        if raw:
            tx = Transaction.decode(raw)
            if tx.tx_id == want:
                out[want] = tx
    return out
