"""The node's list-based latency histogram exports what prometheus_client's Histogram would."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from cli.node._metrics import CountingHistogram

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 5.0)


def _lines(registry: CollectorRegistry) -> list[str]:
    return [line for line in generate_latest(registry).decode().splitlines()
            if line.startswith("lat_") and "_created" not in line]


def test_same_exposition_as_prometheus_client_histogram() -> None:
    ours_reg, theirs_reg = CollectorRegistry(), CollectorRegistry()
    ours = CountingHistogram("lat", "latency", BUCKETS)
    ours_reg.register(ours)
    theirs = Histogram("lat", "latency", buckets=BUCKETS, registry=theirs_reg)
    rng = random.Random(7)
    # bounds themselves (le is inclusive), values past the last bound, batches sharing a value
    values = [*BUCKETS, 0.0, 7.5, 100.0] + [rng.choice((0.01, 0.3, 2.0, 6.0)) for _ in range(50)]
    for v in values:
        count = rng.randrange(1, 4)
        ours.observe(v, count)
        for _ in range(count):
            theirs.observe(v)
    got, want = _lines(ours_reg), _lines(theirs_reg)
    assert got and [g.split()[0] for g in got] == [w.split()[0] for w in want]
    for g, w in zip(got, want, strict=True):
        assert abs(float(g.split()[1]) - float(w.split()[1])) < 1e-9, (g, w)
