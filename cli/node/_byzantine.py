"""Test-only byzantine behaviours, so fault tests can run a lying node as a real process.

Enabled only when BOTH `PARTLEDGER_TEST_MODE=1` and `PARTLEDGER_TEST_BYZANTINE=<list>` are set
(a comma-separated subset of `BEHAVIOURS`); otherwise the node is honest and this module is
inert. The node's own consensus core stays honest: the behaviours rewrite what leaves the node.

- `equivocate`: as proposer, send half the validators our block and the other half another
  valid block, both signed for the same height and round.
- `invalid-block`: as proposer (odd heights), propose a signed block whose state root is wrong.
- `double-vote`: after each PREPARE or COMMIT vote, sign and send a second one for another hash.
- `forged-seal`: answer sync requests with seals whose signatures are flipped or that carry a
  single vote, and announce a tip a few heights beyond ours so that laggards ask us first.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import TYPE_CHECKING

from consensus._messages import CommitVote, Prepare, Proposal, decode_message
from ledger import Block, Seal, sha256
from ledger.errors import ConfigError, DecodeError, PartledgerError

if TYPE_CHECKING:
    from cli.node._node import Node

log = logging.getLogger("partledger.node.byzantine")

BEHAVIOURS = frozenset({"equivocate", "invalid-block", "double-vote", "forged-seal"})
TIP_LIE = 3


class Byzantine:
    """The behaviours of one test node; see the module docstring."""

    def __init__(self, node: Node, behaviours: frozenset[str]) -> None:
        self.node = node
        self.behaviours = behaviours
        self.count = 0

    @classmethod
    def from_env(cls, node: Node) -> Byzantine | None:
        """The behaviours asked for by the environment, or None (an honest node).

        Raises:
            ConfigError: behaviours asked for outside test mode, or unknown ones.
        """
        raw = os.environ.get("PARTLEDGER_TEST_BYZANTINE", "").strip()
        if not raw:
            return None
        if os.environ.get("PARTLEDGER_TEST_MODE") != "1":
            raise ConfigError("PARTLEDGER_TEST_BYZANTINE is set but PARTLEDGER_TEST_MODE=1 is "
                              "not: refusing to run a byzantine node", code="byzantine_refused")
        asked = frozenset(b.strip() for b in raw.split(",") if b.strip())
        unknown = asked - BEHAVIOURS
        if unknown:
            raise ConfigError(f"unknown byzantine behaviour(s) {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(sorted(BEHAVIOURS))}", code="byzantine_unknown")
        log.warning("TEST MODE: this node is byzantine (%s)", ", ".join(sorted(asked)))
        return cls(node, asked)

    # -- consensus messages -------------------------------------------------------------------
    def broadcast(self, channel: str, kind: str, msg: bytes, to: list[bytes]) -> None:
        """Send `msg` (our core's broadcast) the byzantine way."""
        host = self.node.host
        assert host is not None
        try:
            m = decode_message(msg)
        except DecodeError:
            m = None
        me = self.node.node_key
        if isinstance(m, Proposal) and m.sender == me.public:
            if "invalid-block" in self.behaviours and m.height % 2 == 1:
                alt = self._proposal(m, self._invalid_block(m.block))
                host.broadcast(channel, kind, alt, to=to)
                self.count += 1
                return
            if "equivocate" in self.behaviours:
                other = self._other_block(m.block)
                if other is not None:
                    alt = self._proposal(m, other)
                    half = len(to) // 2
                    host.broadcast(channel, kind, msg, to=to[:half] or to)
                    host.broadcast(channel, kind, alt, to=to[half:])
                    self.count += 1
                    return
        host.broadcast(channel, kind, msg, to=to)
        if isinstance(m, Prepare | CommitVote) and "double-vote" in self.behaviours \
                and m.sender == me.public:
            cls = Prepare if isinstance(m, Prepare) else CommitVote
            other_hash = sha256(b"double vote" + m.block_hash)
            alt = cls.sign(me, chain=m.chain, height=m.height, round_=m.round,
                           block_hash=other_hash).encode()
            host.broadcast(channel, kind, alt, to=to)
            self.count += 1

    def _proposal(self, m: Proposal, block: bytes) -> bytes:
        return Proposal.sign(self.node.node_key, chain=m.chain, height=m.height, round_=m.round,
                             block_hash=Block.decode(block).hash, block=block,
                             round_changes=m.round_changes, prepares=m.prepares).encode()

    def _invalid_block(self, data: bytes) -> bytes:
        b = Block.decode(data)
        header = dataclasses.replace(b.header, state_root=sha256(b"wrong" + b.header.state_root))
        return Block(header=header, txs=b.txs).encode()

    def _other_block(self, data: bytes) -> bytes | None:
        """A second valid block for the same height: the same transactions minus the last
        one, or (for an empty block) the same block one millisecond later."""
        b = Block.decode(data)
        try:
            built = self.node.executor.build(proposer=b.header.proposer,
                                             candidates=list(b.txs[:-1]),
                                             time_ms=b.header.time_ms + (0 if b.txs else 1))
        except PartledgerError:  # a test behaviour: fall back to honesty
            return None
        return built.block.encode() if built.block.hash != b.hash else None

    # -- sync ---------------------------------------------------------------------------------
    def sync_items(self, items: list[list[bytes]]) -> list[list[bytes]]:
        if "forged-seal" not in self.behaviours:
            return items
        out = []
        for i, (block, seal_bytes) in enumerate(items):
            seal = Seal.decode(seal_bytes)
            if i % 2 == 0:  # every signature flipped
                votes = tuple((pk, bytes([sig[0] ^ 1]) + sig[1:]) for pk, sig in seal.votes)
            else:  # a short seal: one vote
                votes = seal.votes[:1]
            out.append([block, dataclasses.replace(seal, votes=votes).encode()])
            self.count += 1
        return out

    def tip_height(self, height: int) -> int:
        return height + TIP_LIE if "forged-seal" in self.behaviours else height
