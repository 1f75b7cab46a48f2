"""Test support: a tiny but real key-value `Application`, and a generated consortium.

`KVApp` has per-signer nonces (next expected nonce stored in state), membership from genesis,
and two kinds: `put {key, value}` and `del {key}` (rejected when the key is absent), so tests can
exercise both accepted and rejected transactions without the provenance state machine.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ledger import (
    BlockContext,
    ConsensusParams,
    Execution,
    Genesis,
    Member,
    Overlay,
    SigningKey,
    StateReader,
    Store,
    Transaction,
    TxResult,
)
from ledger._chain import ChainBuilder, DevConsortium, TxSpec, init_store


class KVApp:
    def genesis_writes(self, genesis: object) -> dict[bytes, bytes | None]:
        assert isinstance(genesis, Genesis)
        return {b"org/" + m.org_key: m.name.encode() for m in genesis.members}

    def execute(self, state: StateReader, ctx: BlockContext,
                txs: Sequence[Transaction]) -> Execution:
        o = Overlay(state)
        results = []
        for tx in txs:
            cp = o.checkpoint()
            code, reason = self._apply(o, tx)
            if code != "ok":
                o.rollback(cp)
            results.append(TxResult(tx_id=tx.tx_id, ok=code == "ok", code=code, reason=reason))
        return Execution(writes=o.writes, results=results)

    def _apply(self, o: Overlay, tx: Transaction) -> tuple[str, str]:
        if o.get(b"org/" + tx.signer) is None:
            return "not_member", "signer is not a consortium member"
        nk = b"nonce/" + tx.signer
        expected = int(o.get(nk) or b"0")
        if tx.nonce != expected:
            return "bad_nonce", f"nonce {tx.nonce}, expected {expected}"
        o.set(nk, str(expected + 1).encode())
        key = tx.body.get("key")
        if not isinstance(key, str) or not key:
            return "bad_body", "key missing"
        if tx.kind == "put":
            value = tx.body.get("value")
            if not isinstance(value, str):
                return "bad_body", "value missing"
            o.set(b"kv/" + key.encode(), value.encode())
            return "ok", ""
        if tx.kind == "del":
            if o.get(b"kv/" + key.encode()) is None:
                return "no_such_key", f"key {key} does not exist"
            o.delete(b"kv/" + key.encode())
            return "ok", ""
        return "unknown_kind", f"unknown kind {tx.kind}"


@dataclass
class Consortium:
    genesis: Genesis
    orgs: list[SigningKey]
    nodes: list[SigningKey]


def make_consortium(n: int = 4, *, seed: int = 1, name: str = "test-chain") -> Consortium:
    rng = random.Random(seed)
    orgs = [SigningKey(rng.randbytes(32)) for _ in range(n)]
    nodes = [SigningKey(rng.randbytes(32)) for _ in range(n)]
    members = [Member(name=f"m{i}", org_key=orgs[i].public, node_key=nodes[i].public,
                      addresses=(f"/ip4/127.0.0.1/tcp/{7000 + i}",),
                      roles=("validator", "member")) for i in range(n)]
    g = Genesis.create(chain_name=name, genesis_time_ms=1_700_000_000_000, members=members,
                       consensus=ConsensusParams(timeout_ms=1000, max_block_txs=500,
                                                 block_interval_ms=100))
    return Consortium(g, orgs, nodes)


def kv_specs(rng: random.Random, c: Consortium, n: int) -> list[TxSpec]:
    out: list[TxSpec] = []
    for _ in range(n):
        k = rng.choice(c.orgs)
        key = f"k{rng.randrange(20)}"
        if rng.random() < 0.2:
            out.append((k, "del", {"key": key}))
        else:
            out.append((k, "put", {"key": key, "value": f"v{rng.randrange(10**6)}"}))
    return out


def build_kv_chain(path: Path, c: Consortium, *, blocks: int, txs: int, seed: int = 7,
                   compact: bool = False, paranoid: bool = False) -> Store:
    """A store at `path` with `blocks` sealed blocks of the KV app; returned open (`paranoid`
    as a node opens its store: its tables then carry Bloom filters)."""
    store = init_store(path, c.genesis, KVApp(), paranoid=paranoid)
    b = ChainBuilder(store, c.genesis, KVApp(), c.nodes[:3])
    rng = random.Random(seed)
    for _ in range(blocks):
        b.append_specs(kv_specs(rng, c, txs))
    if compact:
        store.compact()
    return store


def kv_workload(rng: random.Random, consortium: DevConsortium, n: int) -> Iterator[TxSpec]:
    """A `dev generate` workload for KVApp: puts and deletes by every member."""
    orgs = [m.org for m in consortium.members]
    for _ in range(n):
        k = rng.choice(orgs)
        key = f"k{rng.randrange(20)}"
        if rng.random() < 0.2:
            yield (k, "del", {"key": key})
        else:
            yield (k, "put", {"key": key, "value": f"v{rng.randrange(10**6)}"})


def raw_edit(store_path: Path, puts: dict[bytes, bytes | None]) -> None:
    """Write raw keys into a closed store, behind its back (damage for the checks to find):
    block bodies (`b/...`) into the bodies database, everything else into the main one."""
    import plyvel

    from ledger._store import BODIES_DIR, P_BLOCK

    for path, mine in ((store_path, lambda k: not k.startswith(P_BLOCK)),
                       (store_path / BODIES_DIR, lambda k: k.startswith(P_BLOCK))):
        db = plyvel.DB(str(path))
        for k, v in puts.items():
            if not mine(k):
                continue
            if v is None:
                db.delete(k)
            else:
                db.put(k, v)
        db.close()
