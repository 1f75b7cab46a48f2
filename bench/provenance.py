"""Provenance at scale: genealogy queries on a ledger of ≥1,000,000 events, and what the
genealogy indexes cost at block commit, measured in one run on the same blocks.

    python bench/provenance.py            # 1,000,000 events (a few minutes), a table
    python bench/provenance.py --json     # the table on stderr, one JSON object on stdout
    python bench/provenance.py --smoke    # tiny sizes, for CI: checks that it runs

Ledger shape: families of `width` lots over `levels` levels. Level 0 lots are commissioned
(ObjectEvent ADD); every lot of level k ≥ 1 is made by a TransformationEvent from 2 random
lots of level k-1 of its family (fan-in 2, fan-out 2 on average); the top level is assembled
into serialised products (AssociationEvent, 3 components each) that are handed over to another
member (CustodyPropose/Answer). Blocks of `--block` transactions are executed by
`ProvenanceApp` and committed to a real LevelDB store (`Store.commit_block`, one synced batch).

Figures:
- commit: per-block time (execute + encode + LevelDB write) with indexes, for the whole
  ledger; and, for the first `--compare` events, the same blocks committed again to a second
  store by `ProvenanceApp(index=False)`, interleaved block by block with a third store with
  indexes, so that machine load hits both alike: `index_overhead` = with / without - 1.
- queries (p50/p99 over `--samples` random starts): trace back of a product (depth = levels+1)
  with and without the events on the way, trace forward of a raw lot, recall of a mid lot.
Signatures are not made (execute does not check them: the node verifies in batch before);
transactions carry a zero signature and their real tx_id.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger import Block, Transaction
from ledger._app import BlockContext, next_state_root
from ledger._block import BlockHeader, Seal, tx_root
from ledger._store import Store
from ledger.provenance import ProvenanceApp, make_genesis
from ledger.provenance import _query as Q
from ledger.provenance._workload import iso, lgtin, sgtin

MEMBERS = [("m0", ("validator", "member")), ("m1", ("validator", "member")),
           ("m2", ("validator", "member")), ("m3", ("validator", "member"))]
CPS = ["4100000", "4200000", "4300000", "4400000"]


def _tx(chain: bytes, signer: bytes, nonce: int, kind: str, body: dict[str, Any]
        ) -> Transaction:
    unsigned = Transaction.unsigned_map(chain=chain, kind=kind, body=body, signer=signer,
                                        nonce=nonce)
    # as decoded from the wire: tx_id and raw bytes computed once (no signing: see above)
    return Transaction._from_map({**unsigned, "sig": bytes(64)})


class Workload:
    """Deep genealogy families; yields transactions and remembers query starting points."""

    def __init__(self, rng: random.Random, chain: bytes, keys: list[bytes], *, width: int,
                 levels: int) -> None:
        self.rng, self.chain, self.keys = rng, chain, keys
        self.width, self.levels = width, levels
        self.nonces = [0] * len(keys)
        self.t = 1_735_700_000
        self.products: list[str] = []
        self.raw: list[str] = []
        self.mid: list[str] = []
        self.events = 0

    def _next(self, m: int, kind: str, body: dict[str, Any]) -> Transaction:
        n = self.nonces[m]
        self.nonces[m] = n + 1
        return _tx(self.chain, self.keys[m], n, kind, body)

    def _ev(self, typ: str, **f: Any) -> dict[str, Any]:
        self.t += 7
        self.events += 1
        return {"type": typ, "eventID": f"urn:uuid:b-{self.events}",
                "eventTime": iso_s(self.t), "eventTimeZoneOffset": "+00:00", **f}

    def family(self, fam: int) -> list[Transaction]:
        m = fam % len(self.keys)
        cp = CPS[m]
        rng = self.rng
        out = []
        prev = []
        for i in range(self.width):
            lot = lgtin(cp, 1, f"F{fam}R{i}")
            prev.append(lot)
            out.append(self._next(m, "ObjectEvent", self._ev(
                "ObjectEvent", action="ADD", bizStep="commissioning",
                quantityList=[{"epcClass": lot, "quantity": "1000", "uom": "KGM"}])))
        self.raw.append(prev[0])
        for lvl in range(1, self.levels):
            cur = []
            for i in range(self.width):
                lot = lgtin(cp, 1 + lvl, f"F{fam}L{lvl}N{i}")
                ins = rng.sample(prev, 2)
                cur.append(lot)
                out.append(self._next(m, "TransformationEvent", self._ev(
                    "TransformationEvent", bizStep="commissioning",
                    inputQuantityList=[{"epcClass": x, "quantity": "10.5", "uom": "KGM"}
                                       for x in ins],
                    outputQuantityList=[{"epcClass": lot, "quantity": "20", "uom": "KGM"}])))
            if lvl == self.levels // 2:
                self.mid.append(cur[0])
            prev = cur
        # top: serialised parts from the top lots, assembled 3 by 3 into products
        parts = []
        for i, lot in enumerate(prev):
            part = sgtin(cp, 50, f"F{fam}P{i}")
            parts.append(part)
            out.append(self._next(m, "TransformationEvent", self._ev(
                "TransformationEvent", bizStep="commissioning",
                inputQuantityList=[{"epcClass": lot, "quantity": "1", "uom": "KGM"}],
                outputEPCList=[part])))
        for j in range(0, len(parts) - 2, 3):
            prod = sgtin(cp, 60, f"F{fam}X{j}")
            out.append(self._next(m, "AssociationEvent", self._ev(
                "AssociationEvent", action="ADD", bizStep="assembling", parentID=prod,
                childEPCs=parts[j:j + 3])))
            self.products.append(prod)
            to = (m + 1) % len(self.keys)
            pid = f"h-{fam}-{j}"
            out.append(self._next(m, "CustodyPropose", {"proposalId": pid, "epcs": [prod],
                                                        "role": "both",
                                                        "to": MEMBERS[to][0]}))
            out.append(self._next(to, "CustodyAnswer", {"proposalId": pid,
                                                        "response": "accept"}))
        return out


def iso_s(t: int) -> str:
    from datetime import UTC, datetime

    return iso(datetime.fromtimestamp(t, tz=UTC))


class Chain:
    """Commits blocks to a store without sealing cost (seals are not what we measure)."""

    def __init__(self, path: Path, genesis: Any, app: ProvenanceApp) -> None:
        self.store = Store.open(path, genesis=genesis, create=True)
        self.genesis, self.app = genesis, app
        self.store.init(app.genesis_writes(genesis))
        self.height = 0

    def commit(self, txs: list[Transaction]) -> float:
        t0 = time.perf_counter()
        head = self.store.head()
        h = head.height + 1
        ctx = BlockContext(chain=self.genesis.chain_id, height=h, time_ms=h * 1000,
                           proposer=self.genesis.validators[0])
        ex = self.app.execute(self.store, ctx, txs)
        if not ex.all_ok:
            bad = next(r for r in ex.results if not r.ok)
            raise SystemExit(f"benchmark workload rejected: {bad.code}: {bad.reason}")
        header = BlockHeader(chain=self.genesis.chain_id, height=h, prev_hash=head.block_hash,
                             time_ms=h * 1000, proposer=self.genesis.validators[0],
                             tx_root=tx_root(txs), tx_count=len(txs),
                             state_root=next_state_root(head.state_root, ex.writes),
                             validators_hash=self.genesis.validators_hash)
        block = Block(header=header, txs=tuple(txs))
        seal = Seal.build(height=h, round_=0, block_hash=block.hash, votes=[])
        self.store.commit_block(block, seal, ex.writes)
        return time.perf_counter() - t0


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def timed(fn: Any, starts: list[str]) -> dict[str, float]:
    lat = []
    for s in starts:
        t0 = time.perf_counter()
        fn(s)
        lat.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": round(pct(lat, 50), 3), "p99_ms": round(pct(lat, 99), 3),
            "mean_ms": round(statistics.fmean(lat), 3), "n": len(lat)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--levels", type=int, default=11)
    ap.add_argument("--block", type=int, default=1000)
    ap.add_argument("--compare", type=int, default=100_000,
                    help="events committed with and without indexes (interleaved)")
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--dir", type=Path, default=None, help="where to build (default: tmp)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if a.smoke:
        a.events, a.compare, a.samples, a.block = 1500, 600, 20, 200
    log = sys.stderr if a.json else sys.stdout
    genesis, keys = make_genesis(MEMBERS, seed=b"bench")
    pubs = [keys[m].public for m, _ in MEMBERS]
    root = Path(tempfile.mkdtemp(prefix="plbench-", dir=a.dir))
    try:
        result = run(a, genesis, pubs, root, log)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if a.json:
        print(json.dumps(result, sort_keys=True))
    return 0


def _batches(w: Workload, n_events: int, block: int) -> Any:
    buf: list[Transaction] = []
    fam = 0
    while w.events < n_events:
        buf += w.family(fam)
        fam += 1
        while len(buf) >= block:
            yield buf[:block]
            buf = buf[block:]
    if buf:
        yield buf


def run(a: Any, genesis: Any, pubs: list[bytes], root: Path, log: Any) -> dict[str, Any]:
    # 1. index overhead: the same blocks, interleaved, into a store with and one without
    wcmp = Workload(random.Random(a.seed), genesis.chain_id, pubs, width=a.width,
                    levels=a.levels)
    with_idx = Chain(root / "cmp-index", genesis, ProvenanceApp(index=True))
    no_idx = Chain(root / "cmp-noindex", genesis, ProvenanceApp(index=False))
    t_with, t_without = [], []
    for i, blk in enumerate(_batches(wcmp, a.compare, a.block)):
        if i % 2:
            t_without.append(no_idx.commit(blk))
            t_with.append(with_idx.commit(blk))
        else:
            t_with.append(with_idx.commit(blk))
            t_without.append(no_idx.commit(blk))
    with_idx.store.close()
    no_idx.store.close()
    s_with, s_without = sum(t_with), sum(t_without)
    overhead = s_with / s_without - 1
    print(f"index overhead on {wcmp.events:,} events: with {s_with:.2f} s, without "
          f"{s_without:.2f} s → {overhead * 100:+.1f}%", file=log)

    # 2. the big ledger
    w = Workload(random.Random(a.seed + 1), genesis.chain_id, pubs, width=a.width,
                 levels=a.levels)
    big = Chain(root / "big", genesis, ProvenanceApp(index=True))
    t0 = time.perf_counter()
    block_times = []
    txs = 0
    for i, blk in enumerate(_batches(w, a.events, a.block)):
        block_times.append(big.commit(blk))
        txs += len(blk)
        if i % 100 == 0:
            el = time.perf_counter() - t0
            print(f"  {w.events:,} events, {txs:,} txs, {el:.0f} s", file=log)
    build_s = time.perf_counter() - t0
    print(f"built {w.events:,} events ({txs:,} transactions, {len(block_times)} blocks) in "
          f"{build_s:.1f} s: {txs / build_s:,.0f} tx/s; block commit p50 "
          f"{pct(block_times, 50) * 1000:.1f} ms, p99 {pct(block_times, 99) * 1000:.1f} ms",
          file=log)
    store = big.store
    rng = random.Random(a.seed + 2)
    prods = rng.sample(w.products, min(a.samples, len(w.products)))
    raws = rng.sample(w.raw, min(a.samples, len(w.raw)))
    mids = rng.sample(w.mid, min(a.samples, len(w.mid)))
    depth = Q.trace_back(store, prods[0], with_events=False)
    max_depth = max(n["depth"] for n in depth["nodes"])
    q = {
        "trace_back": timed(lambda s: Q.trace_back(store, s, with_events=False), prods),
        "trace_back_with_events": timed(lambda s: Q.trace_back(store, s), prods),
        "trace_forward": timed(lambda s: Q.trace_forward(store, s), raws),
        "recall": timed(lambda s: Q.recall(store, [s]), mids),
    }
    nodes = len(depth["nodes"])
    store.close()
    for name, r in q.items():
        print(f"{name:24s} p50 {r['p50_ms']:8.2f} ms   p99 {r['p99_ms']:8.2f} ms", file=log)
    print(f"trace back depth {max_depth}, {nodes} nodes per trace", file=log)
    return {"events": w.events, "transactions": txs, "blocks": len(block_times),
            "levels": a.levels + 1, "trace_depth": max_depth, "trace_nodes": nodes,
            "width": a.width, "build_s": round(build_s, 1),
            "tx_per_s": round(txs / build_s), "block_commit_p50_ms":
            round(pct(block_times, 50) * 1000, 2), "block_commit_p99_ms":
            round(pct(block_times, 99) * 1000, 2),
            "index_overhead": round(overhead, 4),
            "compare_events": wcmp.events, "commit_with_index_s": round(s_with, 3),
            "commit_without_index_s": round(s_without, 3), "queries": q,
            "smoke": bool(a.smoke)}


if __name__ == "__main__":
    sys.exit(main())
