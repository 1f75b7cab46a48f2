"""Prometheus metrics of one node (`GET /metrics`).

A registry per node (not the process-global one) so that several nodes can live in one process
(tests). Counters kept by the node, the host, the core and the mempool are read at scrape time by
a custom collector, so the hot paths only bump plain integers; latencies are histograms.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from cli.node._node import Node

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)


class NodeMetrics:
    def __init__(self, node: Node) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.tx_latency = CountingHistogram(
            "partledger_tx_commit_latency_seconds",
            "time from admission into this node's mempool to commit", _LATENCY_BUCKETS)
        self.registry.register(self.tx_latency)
        self.block_latency = Histogram(
            "partledger_block_commit_latency_seconds",
            "time from a block's proposal timestamp to its commit here", buckets=_LATENCY_BUCKETS,
            registry=self.registry)
        self.block_interval = Histogram(
            "partledger_block_interval_seconds", "time between consecutive commits here",
            buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.executor_seconds = Histogram(
            "partledger_executor_seconds", "time spent building, validating and committing "
            "blocks and persisting the consensus state before a vote (worker thread, including "
            "the wait for the GIL)", ["phase"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
            registry=self.registry)
        self.registry.register(_NodeCollector(node))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class CountingHistogram(Collector):
    """A histogram filled with plain list arithmetic and exported at scrape time.

    `prometheus_client.Histogram.observe` costs a few µs (locks, a bucket scan), and the
    transaction latency is observed for every transaction of every block: at thousands of
    transactions a second that was over 1% of a node's CPU. Transactions admitted together share
    one admission time, so they are observed together (`count`)."""

    def __init__(self, name: str, doc: str, buckets: tuple[float, ...]) -> None:
        self.name, self.doc = name, doc
        self.bounds = sorted(buckets)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float, count: int = 1) -> None:
        self.counts[bisect_left(self.bounds, value)] += count  # buckets are `le` (<=)
        self.sum += value * count

    def collect(self) -> Iterator[HistogramMetricFamily]:
        bounds = [*(str(float(b)) for b in self.bounds), "+Inf"]
        yield HistogramMetricFamily(self.name, self.doc,
                                    buckets=list(zip(bounds, accumulate(self.counts),
                                                     strict=True)),
                                    sum_value=self.sum)


class _NodeCollector(Collector):
    def __init__(self, node: Node) -> None:
        self.node = node

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        n = self.node

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"partledger_{name}", doc, value=value)

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(f"partledger_{name}", doc, value=value)

        yield gauge("height", "height of the last committed block", n.store.height)
        if n.core is not None:
            st = n.core.statistics()
            yield gauge("consensus_height", "height consensus is working on", st.height)
            yield gauge("consensus_round", "round consensus is in", st.round)
            yield counter("consensus_round_changes", "rounds entered after round 0",
                          st.round_changes)
            yield counter("consensus_dropped_messages",
                          "consensus messages dropped by the core (malformed, wrong chain, "
                          "non-validator, bad signature, ...)",
                          sum(getattr(st, k) for k in st.__slots__ if k.startswith("dropped_")))
            yield counter("consensus_evidence", "equivocation evidence reported",
                          st.evidence_reported)
        c = n.counters
        yield counter("blocks_committed", "blocks committed by this process", c.blocks_committed)
        yield counter("txs_committed", "transactions committed by this process", c.txs_committed)
        yield counter("evidence", "equivocation evidence reported to this node", c.evidence)
        yield counter("dropped_malformed_payloads",
                      "transaction batches and tip announcements from peers that did not decode",
                      c.dropped_malformed)
        yield counter("compact_proposals_sent", "proposals sent as header + transaction ids",
                      c.compact_sent)
        yield counter("compact_proposals_rebuilt",
                      "compact proposals received and rebuilt from the mempool",
                      c.compact_rebuilt)
        yield counter("compact_fetched_txs",
                      "transactions fetched from a proposer to rebuild its compact proposal",
                      c.compact_fetched_txs)
        yield counter("compact_proposals_failed",
                      "compact proposals that could not be rebuilt (dropped)", c.compact_failed)
        yield counter("driver_dropped", "consensus messages dropped because the driver lagged",
                      c.dropped_driver_full)
        calls = CounterMetricFamily("partledger_offload_calls",
                                    "blocking calls (build, validate, commit, persist) run on "
                                    "the event loop or in a worker thread",
                                    labels=["phase", "where"])
        for (phase, where), count in sorted(n.offload.calls.items()):
            calls.add_metric([phase, where], count)
        yield calls
        ss = n.store.stats()
        yield gauge("store_tables", "LevelDB table files", ss.tables)
        yield gauge("store_table_bytes", "bytes in LevelDB table files (MB resolution)",
                    ss.table_bytes)
        yield counter("store_compaction_seconds",
                      "LevelDB compaction time since the node started (whole seconds)",
                      ss.compaction_seconds)
        yield counter("store_compaction_read_bytes", "bytes read by LevelDB compactions",
                      ss.compaction_read_bytes)
        yield counter("store_compaction_written_bytes", "bytes written by LevelDB compactions",
                      ss.compaction_written_bytes)
        kf_keys, kf_bytes = n.store.key_filter_size()
        yield gauge("store_key_filter_keys", "keys in the store's in-memory key filter", kf_keys)
        yield gauge("store_key_filter_bytes", "memory of the store's key filter", kf_bytes)
        ms = n.mempool.statistics()
        yield gauge("mempool_txs", "transactions in the mempool", ms.size)
        yield gauge("mempool_bytes", "bytes of transactions in the mempool", ms.bytes)
        yield counter("mempool_rejected", "transactions refused by the mempool", ms.rejected)
        yield gauge("sync_syncing", "1 while block sync runs", 1 if n.sync.syncing else 0)
        yield counter("sync_blocks", "blocks applied through block sync", n.sync.synced_blocks)
        if n.host is not None:
            hs = n.host.statistics()
            yield gauge("peers", "connected peers", hs.peers)
            yield counter("p2p_messages_sent", "messages sent to peers", hs.messages_sent)
            yield counter("p2p_messages_received", "messages received from peers",
                          hs.messages_received)
            yield counter("p2p_dropped_messages", "messages dropped (full queues, failed sends)",
                          hs.dropped_inbox_full + hs.dropped_outbox_full
                          + hs.dropped_send_failed)
            yield counter("p2p_oversized_frames", "frames over the size limit, dropped",
                          hs.oversized_frames)
            yield counter("p2p_malformed_frames", "frames that did not decode, dropped",
                          hs.malformed_frames)
            yield counter("p2p_refused_handshakes", "handshakes refused (not a member)",
                          hs.refused_handshakes)
            yield counter("p2p_refused_streams", "streams refused (not a member)",
                          hs.refused_streams)
