"""Per-instance cluster metrics on /metrics (read when scraped, nothing per utterance)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

if TYPE_CHECKING:
    from .instance import Cluster


class ClusterCollector:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        c = self.cluster
        yield GaugeMetricFamily(
            "lingua_cluster_redis_up", "Whether Redis answers this instance", value=int(c.up)
        )
        yield CounterMetricFamily(
            "lingua_cluster_redis_round_trips",
            "Pipelines sent to Redis by this instance",
            value=c.link.round_trips,
        )
        yield CounterMetricFamily(
            "lingua_cluster_redis_lost_writes",
            "Writes to Redis that failed (Redis away or queue full)",
            value=c.link.lost_writes,
        )
        relayed = CounterMetricFamily(
            "lingua_cluster_relayed_messages",
            "Messages through the instances' inboxes",
            labels=["direction"],
        )
        relayed.add_metric(["sent"], c.relay.sent)
        relayed.add_metric(["received"], c.relay.received)
        yield relayed
        yield GaugeMetricFamily(
            "lingua_cluster_remote_nodes",
            "Nodes other instances hold, as this instance sees them",
            value=c.remote_nodes(),
        )
        yield GaugeMetricFamily(
            "lingua_cluster_relayed_clients",
            "Clients connected here whose session another instance holds (rooms)",
            value=c.relayed_clients(),
        )
