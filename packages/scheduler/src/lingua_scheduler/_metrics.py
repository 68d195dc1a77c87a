"""Prometheus metrics: counters fed by the core's observer, gauges read from the core at scrape."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from ._core.engine import SchedulerCore


class _CoreCollector(Collector):
    def __init__(self, core: SchedulerCore) -> None:
        self.core = core

    def collect(self) -> Iterator[GaugeMetricFamily]:
        nodes = GaugeMetricFamily("lingua_nodes", "Nodes by status", labels=["status"])
        counts: dict[str, int] = {}
        for n in self.core.registry.nodes.values():
            counts[n.status] = counts.get(n.status, 0) + 1
        for status in ("registering", "ready", "degraded", "draining", "offline"):
            nodes.add_metric([status], counts.get(status, 0))
        yield nodes
        yield GaugeMetricFamily(
            "lingua_queue_size", "Jobs waiting for a free node", value=len(self.core.queue)
        )
        yield GaugeMetricFamily(
            "lingua_jobs_in_flight", "Jobs not yet finished", value=len(self.core.jobs)
        )
        yield GaugeMetricFamily("lingua_sessions", "Open sessions", value=len(self.core.sessions))
        yield GaugeMetricFamily("lingua_rooms", "Open rooms", value=len(self.core.rooms.rooms))


class _HotPathCollector(Collector):
    """Counters bumped once or more per utterance, kept as plain numbers by `Metrics` and
    turned into Prometheus families only when someone scrapes: prometheus_client's own
    Counter and Histogram take a lock (and a Histogram walks its buckets in Python) on every
    observation."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        m = self.metrics
        jobs = CounterMetricFamily("lingua_jobs", "Jobs by outcome", labels=["outcome"])
        for outcome, count in sorted(m.outcomes.items()):
            jobs.add_metric([outcome], count)
        yield jobs
        yield CounterMetricFamily(
            "lingua_slow_peer_sends",
            "Messages that waited in a peer's outbox because its socket buffer was full",
            value=m.slow_peer_sends,
        )
        yield CounterMetricFamily(
            "lingua_slow_peers_closed",
            "Peers closed (1013) because their outbox passed peer_outbox_bytes unread",
            value=m.slow_peers_closed,
        )
        yield CounterMetricFamily(
            "lingua_partials_coalesced",
            "Partial transcripts replaced in a slow reader's outbox by a newer one of the same "
            "utterance before they were sent",
            value=m.partials_coalesced,
        )
        cumulative, buckets = 0, []
        for bound, count in zip((*m.latency_buckets, math.inf), m.latency_counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == math.inf else repr(bound), cumulative))
        yield HistogramMetricFamily(
            "lingua_dispatch_latency_seconds",
            "Time from utterance accepted to job assigned",
            buckets=buckets,
            sum_value=m.latency_sum,
        )


class Metrics:
    """Implements the core's Observer and renders /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.outcomes: dict[str, int] = {}
        self.slow_peer_sends = 0
        self.slow_peers_closed = 0
        self.partials_coalesced = 0
        self.latency_buckets = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
        self.latency_counts = [0] * (len(self.latency_buckets) + 1)
        self.latency_sum = 0.0

    def attach(self, core: SchedulerCore) -> None:
        self.registry.register(_CoreCollector(core))
        self.registry.register(_HotPathCollector(self))

    def job_outcome(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def dispatch_latency(self, seconds: float) -> None:
        self.latency_counts[bisect.bisect_left(self.latency_buckets, seconds)] += 1
        self.latency_sum += seconds

    def slow_peer_send(self) -> None:
        self.slow_peer_sends += 1

    def partial_coalesced(self) -> None:
        self.partials_coalesced += 1

    def slow_peer_closed(self) -> None:
        self.slow_peers_closed += 1

    def render(self) -> bytes:
        return generate_latest(self.registry)
