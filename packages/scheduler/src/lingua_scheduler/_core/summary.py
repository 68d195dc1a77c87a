"""The public, non-sensitive summary of what the cluster can serve right now.

Clients (the web page above all) build their language lists from it. It holds no session,
room, node or pairing identifiers: only which source and target languages public, ready nodes
can run, with and without speech output. It is safe to serve without authentication and with
`Access-Control-Allow-Origin: *`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .registry import NodeRecord, NodeRegistry


def language_summary(nodes: Iterable[NodeRecord]) -> dict[str, Any]:
    """Source/target languages that ready public nodes serve, and how many such nodes exist.

    `pairs` lists concrete (src, tgt) combinations; a source of "*" means any language the node
    can transcribe (speech translation). `speech` lists targets a node can also synthesise.
    """
    src_langs: set[str] = set()
    tgt_langs: set[str] = set()
    speech: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    ready = 0
    for node in nodes:
        if node.status not in ("ready", "degraded") or not node.accept_public:
            continue
        ready += 1
        caps = node.caps
        asr = {lang for lang in caps.asr_languages if lang != "auto"}
        src_langs |= asr
        if caps.auto_detect:
            src_langs.add("auto")
        for s, t in caps.nmt_pairs:
            if caps.nmt_ready and (s in asr or caps.auto_detect):
                pairs.add((s, t))
                tgt_langs.add(t)
        for t in caps.speech_translation_targets:
            pairs.add(("*", t))
            tgt_langs.add(t)
        for lang in asr:
            pairs.add((lang, lang))
            tgt_langs.add(lang)
        speech |= {t for t in tgt_langs if caps.can_speak(t)}
    return {
        "ready_nodes": ready,
        "src_langs": sorted(src_langs),
        "tgt_langs": sorted(tgt_langs),
        "speech_langs": sorted(speech),
        "pairs": [{"src": s, "tgt": t} for s, t in sorted(pairs)],
    }


class PublicClusterView:
    """`/api/v1/cluster` for anyone: aggregate counts and what nodes can run, with no room
    code, session id, node id or pairing in it (those are the operator's view). The node
    list is rebuilt only when the registry changed, so polling it costs O(nodes) at most once
    per change."""

    def __init__(self) -> None:
        self._version = -1
        self._nodes: list[dict[str, Any]] = []

    def render(self, registry: NodeRegistry, counts: Mapping[str, int]) -> dict[str, Any]:
        """`counts`: sessions, rooms, jobs_in_flight, queue_size (numbers only)."""
        if registry.version != self._version:
            self._version = registry.version
            self._nodes = [_capabilities(n) for n in registry.nodes.values() if n.conn_id]
        by_status: dict[str, int] = {}
        for node in registry.nodes.values():
            by_status[node.status] = by_status.get(node.status, 0) + 1
        return {
            "ready_nodes": by_status.get("ready", 0),
            "nodes_by_status": by_status,
            "nodes": self._nodes,
            **counts,
        }


def _capabilities(node: NodeRecord) -> dict[str, Any]:
    caps = node.caps
    return {
        "accept_public_jobs": node.accept_public,
        "max_concurrent_jobs": node.max_jobs,
        "asr_languages": sorted(caps.asr_languages),
        "tts_languages": sorted(caps.tts_languages),
        "language_pairs": caps.pairs(),
        "pipelines": caps.complete_pipelines(),
        "features": sorted(caps.features),
    }
