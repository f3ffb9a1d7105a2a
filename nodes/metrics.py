"""Prometheus metrics of one node (its own registry, so several nodes can share a process
in tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.height = Gauge(
            "parktrace_height", "Height of the last committed block", registry=self.registry
        )
        self.mempool = Gauge(
            "parktrace_mempool_size", "Transactions waiting to commit", registry=self.registry
        )
        self.peers = Gauge(
            "parktrace_peers_connected", "Validators this node can send to", registry=self.registry
        )
        self.committed_txs = Counter(
            "parktrace_committed_transactions",
            "Transactions committed by this node",
            registry=self.registry,
        )
        self.block_interval = Histogram(
            "parktrace_block_interval_seconds",
            "Time between consecutive blocks",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
            registry=self.registry,
        )
        self.last_block_time = Gauge(
            "parktrace_last_block_timestamp_seconds",
            "Header time of the last block",
            registry=self.registry,
        )
        self.rounds = Counter(
            "parktrace_consensus_rounds_started", "Consensus rounds started", registry=self.registry
        )
        self.synced_blocks = Counter(
            "parktrace_synced_blocks",
            "Blocks fetched from peers to catch up",
            registry=self.registry,
        )
