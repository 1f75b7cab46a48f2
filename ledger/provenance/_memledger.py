"""An in-memory ledger of the provenance application: genesis, keys, nonces, blocks.

Used by `epcis check` (to run the stateful rules on a throwaway state), tests and benchmarks.
It executes blocks exactly like a node (same `execute`, same state root chain) but keeps the state
in a dict and does not seal blocks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ledger._app import BlockContext, Execution, TxResult, next_state_root
from ledger._crypto import SigningKey
from ledger._genesis import ConsensusParams, Genesis, Member
from ledger._memstate import MemState
from ledger._tx import Transaction
from ledger.provenance._app import ProvenanceApp

DEFAULT_ROLES: dict[str, tuple[str, ...]] = {}


def make_genesis(members: Sequence[tuple[str, tuple[str, ...]]], *, seed: bytes = b"dev",
                 chain_name: str = "dev", genesis_time_ms: int = 1_700_000_000_000
                 ) -> tuple[Genesis, dict[str, SigningKey]]:
    """A genesis for `members` [(name, roles)] with keys derived from `seed` (tests, demos)."""
    from ledger._crypto import sha256

    keys: dict[str, SigningKey] = {}
    ms = []
    for name, roles in members:
        org = SigningKey(sha256(seed + b"/org/" + name.encode()))
        node = SigningKey(sha256(seed + b"/node/" + name.encode()))
        keys[name] = org
        ms.append(Member(name=name, org_key=org.public, node_key=node.public, addresses=(),
                         roles=tuple(roles)))
    g = Genesis.create(chain_name=chain_name, genesis_time_ms=genesis_time_ms, members=ms,
                       consensus=ConsensusParams())
    return g, keys


class MemLedger:
    """Execute transactions block by block on an in-memory state."""

    def __init__(self, genesis: Genesis, keys: Mapping[str, SigningKey], *,
                 app: ProvenanceApp | None = None) -> None:
        self.genesis = genesis
        self.keys = dict(keys)
        self.app = app or ProvenanceApp()
        self.state = MemState()
        gw = self.app.genesis_writes(genesis)
        self.state.apply(gw)
        self.root = next_state_root(bytes(32), gw)
        self.height = 0
        self.time_ms = genesis.genesis_time_ms
        self.nonces: dict[bytes, int] = {}

    def sign(self, member: str, kind: str, body: Mapping[str, Any]) -> Transaction:
        key = self.keys[member]
        n = self.nonces.get(key.public, 0)
        self.nonces[key.public] = n + 1
        return Transaction.create(key, chain=self.genesis.chain_id, kind=kind, body=body, nonce=n)

    def execute(self, txs: Sequence[Transaction]) -> Execution:
        """Run `txs` as the next block without committing it."""
        ctx = BlockContext(chain=self.genesis.chain_id, height=self.height + 1,
                           time_ms=self.time_ms + 1000, proposer=b"\x00" * 32)
        return self.app.execute(self.state, ctx, txs)

    def commit(self, txs: Sequence[Transaction], *, only_ok: bool = True) -> Execution:
        """Execute and commit a block (rejected transactions are dropped when `only_ok`)."""
        ex = self.execute(txs)
        if only_ok and not ex.all_ok:
            ok = [t for t, r in zip(txs, ex.results, strict=True) if r.ok]
            ex2 = self.execute(ok)
            ex = Execution(writes=ex2.writes, results=ex.results)
        self.state.apply(ex.writes)
        self.root = next_state_root(self.root, ex.writes)
        self.height += 1
        self.time_ms += 1000
        for t, r in zip(txs, ex.results, strict=True):
            if not r.ok and t.signer in self.nonces:   # the nonce was not consumed
                self.nonces[t.signer] = min(self.nonces[t.signer], t.nonce)
        return ex

    def submit(self, member: str, kind: str, body: Mapping[str, Any]) -> TxResult:
        """One transaction in its own block; returns its result."""
        tx = self.sign(member, kind, body)
        return self.commit([tx]).results[0]
