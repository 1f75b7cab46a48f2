"""Cut the network between real node processes, each in its own network namespace.

Four validators (f = 1) under a steady API load, in file order: a minority of one cut off never
commits while the other three keep committing, and catches up after healing; a 2|2 split
commits nothing on either side, then recovers; a rate-limited (slow) link; a flapping link.
Finally nothing any node reported committed is missing anywhere, every node holds the same
blocks, and `audit replay` accepts every data directory.

Needs root (network namespaces, veth pairs, bridges; see `tests/faults/_netns.py`). When not
root the module fails with that reason rather than skipping.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli.node._devnet import Devnet
from ledger import ConsensusParams
from tests.faults._harness import (
    Load,
    audit_replay_all,
    check_nothing_lost,
    cleanup,
    common_block_agreement,
    get_status,
    snapshot_code,
    start_from,
)
from tests.faults._netns import TOKEN, NetnsDevnet, create_netns_devnet, new_netns, require_root
from tests.node_helpers import wait_until

CONSENSUS = ConsensusParams(timeout_ms=1000, max_block_txs=500, block_interval_ms=100)


@dataclass
class Ctx:
    nets: NetnsDevnet
    net: Devnet
    load: Load
    rng: random.Random
    code: Path

    @property
    def urls(self) -> list[str]:
        return [n.api for n in self.net.validators]

    def height(self, i: int) -> int:
        s = get_status(self.urls[i], timeout_s=10)
        assert s is not None, f"node {i} does not answer on its control link"
        h: int = s["height"]
        return h

    def tip(self, i: int) -> tuple[int, str]:
        s = get_status(self.urls[i], timeout_s=10)
        assert s is not None
        return s["height"], s["tip_hash"]

    def wait_heights(self, nodes: list[int], above: int, timeout_s: float, what: str) -> None:
        wait_until(lambda: all(self.height(i) > above for i in nodes), timeout_s=timeout_s,
                   interval_s=0.1, what=what)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ctx]:
    require_root()
    base = tmp_path_factory.mktemp("partitions")
    nets = new_netns(4)
    d = base / "net"
    try:
        nets.build()
        net = create_netns_devnet(d, nets, consensus=CONSENSUS)
        code = snapshot_code(base / "code")
        for i, n in enumerate(net.validators):
            net = net.with_pid(n.name, start_from(code, n.home, prefix=nets.prefix(i)))
        net.save()
        seed = random.randrange(1, 10**6)
        print(f"\nSEED={seed} namespaces {nets.tag}* on 10.250.{nets.subnet}.0/24")
        c = Ctx(nets=nets, net=net, load=Load(net, lambda: list(net.validators), seed=seed,
                                              headers={"authorization": f"Bearer {TOKEN}"}),
                rng=random.Random(seed), code=code)
        wait_until(lambda: all((s := get_status(u)) is not None and s["height"] >= 1
                               for u in c.urls), timeout_s=120, what="block 1 on every node")
        c.load.start()
        wait_until(lambda: len(c.load.reported) >= 50, timeout_s=60, what="commits under load")
        yield c
    finally:
        try:
            cleanup(d)
        finally:
            nets.teardown()


def _others(i: int, n: int = 4) -> list[int]:
    return [j for j in range(n) if j != i]


def test_partition_minority_never_commits_majority_keeps_committing(ctx: Ctx) -> None:
    victim = ctx.rng.randrange(4)
    majority = _others(victim)
    h_cut = ctx.height(victim)
    ctx.nets.partition({victim})
    # a block already decided when the link went can still land; after that, nothing
    top = max(ctx.height(i) for i in majority)
    ctx.wait_heights(majority, top + 3, 60, "the majority to commit 3 blocks")
    frozen = ctx.tip(victim)
    assert frozen[0] <= h_cut + 1
    top = max(ctx.height(i) for i in majority)
    t0 = time.monotonic()
    ctx.wait_heights(majority, top + 10, 60, "the majority to commit 10 more blocks")
    print(f"majority committed 10 blocks in {time.monotonic() - t0:.1f}s while node {victim} "
          f"stayed at {frozen[0]}")
    assert ctx.tip(victim) == frozen, "the cut-off minority committed a block"
    ctx.nets.heal()
    top = max(ctx.height(i) for i in majority)
    ctx.wait_heights([victim], top, 90, "the healed node to catch up")
    common_block_agreement(ctx.urls)


def test_partition_two_two_commits_nothing_then_recovers(ctx: Ctx) -> None:
    side_b = set(ctx.rng.sample(range(4), 2))
    ctx.nets.partition(side_b)
    # let whatever was decided before the cut land (two round timeouts), then watch
    time.sleep(2 * CONSENSUS.timeout_ms / 1000)
    before = [ctx.tip(i) for i in range(4)]
    time.sleep(6 * CONSENSUS.timeout_ms / 1000)  # a window for a commit that must not happen
    after = [ctx.tip(i) for i in range(4)]
    assert before == after, f"a side without a quorum committed: {before} -> {after}"
    ctx.nets.heal()
    top = max(h for h, _ in after)
    ctx.wait_heights(list(range(4)), top + 3, 120, "every node to commit after healing")
    common_block_agreement(ctx.urls)


def test_slow_link_consortium_keeps_committing(ctx: Ctx) -> None:
    slow = ctx.rng.randrange(4)
    ctx.nets.slow(slow, rate_kbit=256, latency_ms=500)
    try:
        top = max(ctx.height(i) for i in range(4))
        t0 = time.monotonic()
        ctx.wait_heights(_others(slow), top + 15, 90,
                         "the consortium to commit 15 blocks with one slow link")
        lag = max(ctx.height(i) for i in range(4)) - ctx.height(slow)
        print(f"15 blocks in {time.monotonic() - t0:.1f}s with node {slow} at 256 kbit/s; "
              f"its lag {lag} blocks")
    finally:
        ctx.nets.unslow(slow)
    top = max(ctx.height(i) for i in range(4))
    ctx.wait_heights([slow], top, 90, "the slow node to catch up")
    common_block_agreement(ctx.urls)


def test_flapping_link_converges(ctx: Ctx) -> None:
    flap = ctx.rng.randrange(4)
    start = max(ctx.height(i) for i in range(4))
    cycles = 12
    for _ in range(cycles):
        ctx.nets.link(flap, up=False)
        time.sleep(ctx.rng.uniform(0.2, 1.5))  # random fault timing, not synchronisation
        ctx.nets.link(flap, up=True)
        time.sleep(ctx.rng.uniform(0.2, 1.5))
    top = max(ctx.height(i) for i in range(4))
    assert top > start + 5, "the consortium stalled while one link flapped"
    ctx.wait_heights(list(range(4)), top + 2, 90, "every node to commit after the flapping")
    common_block_agreement(ctx.urls)


def test_zz_nothing_lost_and_every_data_dir_replays(ctx: Ctx) -> None:
    ctx.load.stop()
    ctx.load.check()
    top = max(ctx.height(i) for i in range(4))
    ctx.wait_heights(list(range(4)), top, 60, "every node to reach the last height")
    counts = check_nothing_lost(ctx.net, ctx.load, ctx.urls)
    h, block_hash, root = common_block_agreement(ctx.urls)
    print(f"{counts}; common height {h} {block_hash[:16]} root {root[:16]}; "
          f"{ctx.load.errors} request errors")
    assert counts["committed"] >= 100
    replays = audit_replay_all(Devnet.load(ctx.net.dir), ctx.code)
    assert len(replays) == 4
