"""The public, non-sensitive summary of what the cluster can serve right now.

Clients (the web page above all) build their language lists from it. It holds no session,
room, node or pairing identifiers: only which source and target languages public, ready nodes
can run, with and without speech output. It is safe to serve without authentication and with
`Access-Control-Allow-Origin: *`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .registry import NodeRecord


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
