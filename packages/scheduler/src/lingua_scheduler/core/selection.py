"""Choosing a node for a job.

Eligible: connected, `ready` (or `degraded` when no ready node fits), able to run the job
(ASR for the source, a translation path, TTS for the target when asked, every requested
feature), under its job limit, public unless the session is paired to it.
Among eligible nodes: the sticky node if still eligible, else the fewest in-flight jobs (as
counted by the scheduler), then the lower reported load, then at random.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .registry import NodeRecord


@dataclass(frozen=True, slots=True)
class JobNeeds:
    src_lang: str
    tgt_lang: str
    use_tts: bool
    use_nmt: bool
    features: frozenset[str]
    paired_node_id: str | None = None


def capable(node: NodeRecord, needs: JobNeeds) -> bool:
    """Could this node ever run the job (ignoring load and status)?"""
    if node.conn_id is None:
        return False
    if needs.paired_node_id is not None:
        if node.node_id != needs.paired_node_id:
            return False
    elif not node.accept_public:
        return False
    return node.caps.can_run(
        needs.src_lang, needs.tgt_lang, needs.use_tts, needs.use_nmt, needs.features
    )


def select_node(
    nodes: list[NodeRecord],
    needs: JobNeeds,
    rng: random.Random,
    sticky_node_id: str | None = None,
    exclude: frozenset[str] = frozenset(),
) -> NodeRecord | None:
    """The best node for the job now, or None when every capable node is busy or unfit."""
    candidates = [n for n in nodes if n.node_id not in exclude and capable(n, needs)]
    for statuses in (("ready",), ("degraded",)):
        pool = [n for n in candidates if n.status in statuses and n.has_capacity()]
        if not pool:
            continue
        if sticky_node_id is not None:
            for n in pool:
                if n.node_id == sticky_node_id:
                    return n
        best = min((len(n.in_flight), n.reported_load) for n in pool)
        tied = [n for n in pool if (len(n.in_flight), n.reported_load) == best]
        return tied[0] if len(tied) == 1 else rng.choice(tied)
    return None


def any_capable(nodes: list[NodeRecord], needs: JobNeeds) -> bool:
    """True when some node that is (or may soon be) able to serve this job is connected."""
    return any(capable(n, needs) and n.status in ("ready", "degraded") for n in nodes)
