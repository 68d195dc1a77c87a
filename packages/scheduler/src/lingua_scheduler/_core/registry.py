"""Node registry and lifecycle: registering -> ready -> degraded -> draining -> offline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lingua_protocol import NodeHeartbeat, NodeRegister, NodeStatus, ResourceUsage

from .capabilities import Capabilities, derive, merge_update


@dataclass(slots=True)
class NodeRecord:
    node_id: str
    conn_id: str | None
    register: NodeRegister
    caps: Capabilities
    connected_at: float
    last_heartbeat: float
    status: NodeStatus = "registering"
    reason: str = ""
    draining: bool = False
    in_flight: set[str] = field(default_factory=set)
    stream_jobs: set[str] = field(default_factory=set)
    """The streaming jobs among `in_flight`: they count against `max_concurrent_streams`,
    not against `max_jobs`."""
    usage: ResourceUsage | None = None
    max_jobs: int = 2
    binary_audio: bool = False
    offline_at: float | None = None
    jobs_done: int = 0
    jobs_failed: int = 0

    @property
    def accept_public(self) -> bool:
        return self.register.accept_public_jobs

    @property
    def reported_load(self) -> float:
        u = self.usage
        if u is None:
            return 0.0
        return max(u.cpu_percent or 0.0, u.gpu_percent or 0.0)

    def has_capacity(self) -> bool:
        return len(self.in_flight) - len(self.stream_jobs) < self.max_jobs

    def summary(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "status": self.status,
            "reason": self.reason,
            "accept_public_jobs": self.accept_public,
            "max_concurrent_jobs": self.max_jobs,
            "in_flight_jobs": sorted(self.in_flight),
            "streams": len(self.stream_jobs),
            "max_concurrent_streams": self.register.max_concurrent_streams or 0,
            "asr_languages": sorted(self.caps.asr_languages),
            "tts_languages": sorted(self.caps.tts_languages),
            "language_pairs": self.caps.pairs(),
            "pipelines": self.caps.complete_pipelines(),
            "features": sorted(self.caps.features),
            "installed_models": [  # capped by the protocol (256); shows what the node serves
                m.model_dump(exclude_none=True) for m in self.register.installed_models or []
            ],
            "resource_usage": self.usage.model_dump(exclude_none=True) if self.usage else None,
            "binary_audio": self.binary_audio,
            "jobs_done": self.jobs_done,
            "jobs_failed": self.jobs_failed,
        }


@dataclass(frozen=True, slots=True)
class Thresholds:
    cpu_percent: float = 95.0
    mem_percent: float = 95.0
    gpu_mem_percent: float = 95.0


def evaluate_status(node: NodeRecord, limits: Thresholds) -> tuple[NodeStatus, str]:
    """The status a connected node should have now, and why."""
    pipelines = node.caps.complete_pipelines()
    if not pipelines:
        missing = []
        if not node.caps.asr_ready or not node.caps.asr_languages:
            missing.append("ASR")
        if not node.caps.nmt_pairs and not node.caps.speech_translation_targets:
            missing.append("a translation path (NMT pair or speech translation)")
        return "registering", "no complete pipeline yet: missing " + " and ".join(missing or ["?"])
    if node.draining:
        return "draining", "draining: running jobs finish, no new jobs"
    reasons = []
    u = node.usage
    if u is not None:
        if (u.cpu_percent or 0) > limits.cpu_percent:
            reasons.append(f"cpu {u.cpu_percent:.0f}% > {limits.cpu_percent:.0f}%")
        if (u.mem_percent or 0) > limits.mem_percent:
            reasons.append(f"memory {u.mem_percent:.0f}% > {limits.mem_percent:.0f}%")
        if (u.gpu_mem_percent or 0) > limits.gpu_mem_percent:
            reasons.append(f"gpu memory {u.gpu_mem_percent:.0f}% > {limits.gpu_mem_percent:.0f}%")
    if node.caps.not_ready_types:
        reasons.append("not ready: " + ", ".join(sorted(node.caps.not_ready_types)))
    if reasons:
        return "degraded", "; ".join(reasons)
    return "ready", "pipelines: " + node.caps.pipelines_summary()


class NodeRegistry:
    """All nodes the scheduler knows, connected or recently offline."""

    def __init__(self, limits: Thresholds, default_max_jobs: int = 2) -> None:
        self.limits = limits
        self.default_max_jobs = default_max_jobs
        self.nodes: dict[str, NodeRecord] = {}
        self.by_conn: dict[str, str] = {}
        self.version = 0  # bumped whenever a node connects, leaves or changes capabilities

    def register(
        self, conn_id: str, node_id: str, message: NodeRegister, now: float, binary_ok: bool
    ) -> NodeRecord:
        old = self.nodes.get(node_id)
        record = NodeRecord(
            node_id=node_id,
            conn_id=conn_id,
            register=message,
            caps=derive(message),
            connected_at=now,
            last_heartbeat=now,
            max_jobs=message.max_concurrent_jobs or self.default_max_jobs,
            binary_audio=binary_ok,
        )
        if old is not None:
            record.jobs_done, record.jobs_failed = old.jobs_done, old.jobs_failed
        self.nodes[node_id] = record
        self.by_conn[conn_id] = node_id
        self.version += 1
        self.refresh(record)
        return record

    def live_conflict(self, node_id: str) -> bool:
        old = self.nodes.get(node_id)
        return old is not None and old.conn_id is not None

    def for_conn(self, conn_id: str) -> NodeRecord | None:
        node_id = self.by_conn.get(conn_id)
        return self.nodes.get(node_id) if node_id else None

    def heartbeat(self, node: NodeRecord, message: NodeHeartbeat, now: float) -> bool:
        """Apply a heartbeat; True when the capabilities changed."""
        node.last_heartbeat = now
        if message.resource_usage is not None:
            node.usage = message.resource_usage
        if message.draining is not None:
            node.draining = message.draining
        changed = False
        updated = merge_update(node.register, message)
        if updated is not None:
            node.register = updated
            node.caps = derive(updated)
            self.version += 1
            changed = True
        self.refresh(node)
        return changed

    def refresh(self, node: NodeRecord) -> None:
        if node.conn_id is None:
            return
        node.status, node.reason = evaluate_status(node, self.limits)

    def mark_offline(self, node: NodeRecord, reason: str, now: float) -> None:
        if node.conn_id is not None:
            self.by_conn.pop(node.conn_id, None)
        node.conn_id = None
        self.version += 1
        node.status = "offline"
        node.reason = reason
        node.offline_at = now

    def connected(self) -> list[NodeRecord]:
        return [n for n in self.nodes.values() if n.conn_id is not None]

    def forget_offline(self, now: float, retention_s: float) -> None:
        for node_id in [
            n.node_id
            for n in self.nodes.values()
            if n.conn_id is None and n.offline_at is not None and now - n.offline_at > retention_s
        ]:
            del self.nodes[node_id]
            self.version += 1
