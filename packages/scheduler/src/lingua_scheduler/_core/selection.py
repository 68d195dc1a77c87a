"""Choosing a node for a job.

Eligible: connected, `ready` (or `degraded` when no ready node fits), able to run the job
(ASR for the source, a translation path, TTS for the target when asked), under its job limit,
public unless the session is paired to it.
Requested optional features (emotion, voice style, speech rate) are a preference, not a
condition: nodes that compute every requested feature come first, and only when none of them
can take the job now does it go to a node without, which leaves those result fields null
(protocol v0.1 §2.3). A request for a feature no node has is served, never NO_AVAILABLE_NODE.
Among eligible nodes of one preference: the sticky node if still eligible, else the fewest
in-flight jobs (as counted by the scheduler), then the lower reported load, then at random.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from .registry import NodeRecord, NodeRegistry


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
    return node.caps.can_run(needs.src_lang, needs.tgt_lang, needs.use_tts, needs.use_nmt)


class CapableNodes(list[NodeRecord]):
    """The nodes able to run one kind of job, those with every requested feature first:
    `self[:with_features]` have them all, the rest lack at least one."""

    def __init__(self, nodes: list[NodeRecord], features: frozenset[str]) -> None:
        preferred = [n for n in nodes if n.caps.has_features(features)]
        others = [n for n in nodes if not n.caps.has_features(features)]
        super().__init__(preferred + others)
        self.with_features = len(preferred)
        self.features = features
        self._tiers = (preferred, others)  # made once: a dispatch reads them, never copies

    def tiers(self) -> tuple[list[NodeRecord], list[NodeRecord]]:
        return self._tiers


def pick_node(
    capable_nodes: list[NodeRecord],
    rng: random.Random,
    sticky_node_id: str | None = None,
    exclude: AbstractSet[str] = frozenset(),
    has_room: Callable[[NodeRecord], bool] = NodeRecord.has_capacity,
) -> NodeRecord | None:
    """The best node for a job among `capable_nodes` (those able to run it at all, see
    `CapableIndex`), or None when every one is busy, excluded or unfit now. When given
    `CapableNodes`, a node with every requested feature (ready, then degraded) is taken before
    one without. `has_room` says whether a node can take one more (a job slot by default; a
    stream slot for a streamed utterance)."""
    tiers = capable_nodes.tiers() if isinstance(capable_nodes, CapableNodes) else (capable_nodes,)
    for tier in tiers:
        node = _pick_in(tier, rng, sticky_node_id, exclude, has_room)
        if node is not None:
            return node
    return None


def _pick_in(
    nodes: list[NodeRecord],
    rng: random.Random,
    sticky_node_id: str | None,
    exclude: AbstractSet[str],
    has_room: Callable[[NodeRecord], bool],
) -> NodeRecord | None:
    """One pass per status over the tier: the sticky node as soon as it is seen eligible,
    else the least loaded, drawing among ties only when there are several (so a seeded run
    draws exactly as often as it did)."""
    for status in ("ready", "degraded"):
        best: tuple[int, float] | None = None
        tied: list[NodeRecord] = []
        for n in nodes:
            if n.status != status or n.node_id in exclude or not has_room(n):
                continue
            if n.node_id == sticky_node_id:
                return n
            key = (len(n.in_flight), n.reported_load)
            if best is None or key < best:
                best, tied = key, [n]
            elif key == best:
                tied.append(n)
        if tied:
            return tied[0] if len(tied) == 1 else rng.choice(tied)
    return None


class CapableIndex:
    """The connected nodes able to run jobs with given needs, worked out once per kind of job
    and again only after the registry changed (a node came, went, or changed capabilities):
    a dispatch then looks at load alone instead of every node's languages."""

    MAX_KINDS = 4096

    def __init__(self, registry: NodeRegistry) -> None:
        self.registry = registry
        self._version = -1
        self._by_needs: dict[JobNeeds, CapableNodes] = {}

    def nodes(self, needs: JobNeeds) -> CapableNodes:
        if self._version != self.registry.version or len(self._by_needs) > self.MAX_KINDS:
            self._by_needs.clear()
            self._version = self.registry.version
        found = self._by_needs.get(needs)
        if found is None:
            able = [n for n in self.registry.connected() if capable(n, needs)]
            found = CapableNodes(able, needs.features)
            self._by_needs[needs] = found
        return found
