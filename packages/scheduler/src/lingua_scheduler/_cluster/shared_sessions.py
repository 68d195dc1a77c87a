"""Sessions any instance can resume: each session's `SessionState` in Redis under its resume
token, with the instance that holds it (`home`).

Written when a session opens or resumes (before its ack goes out, so a token a client holds
is always in Redis), refreshed by its home every `REFRESH_EVERY_S`, deleted by its home when
the session ends there (only while that instance is still its home). Nothing is written per
utterance while the client is connected; results held for an absent client are copied to
Redis as they are held (`SessionSync.held`). A result still being computed when an instance
dies is not in Redis: the client holds that utterance and sends it again after resuming on
another instance, which answers it once (`docs/operations.md`).
"""

from __future__ import annotations

from typing import Any

import orjson
from lingua_protocol import FeatureFlags, PipelineConfig

from .._core.sessions import SessionState

REFRESH_EVERY_S = 30.0

DELETE_IF_HOME = """
local v = redis.call('GET', KEYS[1])
if v and cjson.decode(v)['home'] == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
"""Delete a session's state only while the caller is its home (it may have moved on)."""


def encode(state: SessionState, home: str) -> bytes:
    return orjson.dumps(
        {
            "home": home,
            "session_id": state.session_id,
            "src_lang": state.src_lang,
            "tgt_lang": state.tgt_lang,
            "dialect": state.dialect,
            "features": state.features.model_dump(mode="json") if state.features else None,
            "pipeline": state.pipeline.model_dump(mode="json"),
            "binary_audio": state.binary_audio,
            "paired_node_id": state.paired_node_id,
            "display_name": state.display_name,
            "streaming": state.streaming,
            "partial_interval_ms": state.partial_interval_ms,
        }
    )


def decode(token: str, raw: bytes) -> tuple[SessionState, str]:
    """The state and its home instance; raises ValueError for an entry that does not parse."""
    try:
        entry: dict[str, Any] = orjson.loads(raw)
        features = entry.get("features")
        state = SessionState(
            session_id=str(entry["session_id"]),
            resume_token=token,
            src_lang=str(entry["src_lang"]),
            tgt_lang=str(entry["tgt_lang"]),
            dialect=entry.get("dialect"),
            features=FeatureFlags.model_validate(features) if features else None,
            pipeline=PipelineConfig.model_validate(entry["pipeline"]),
            binary_audio=bool(entry["binary_audio"]),
            paired_node_id=entry.get("paired_node_id"),
            display_name=entry.get("display_name"),
            streaming=entry.get("streaming"),
            partial_interval_ms=entry.get("partial_interval_ms"),
        )
        return state, str(entry["home"])
    except (KeyError, TypeError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"unreadable session state: {exc}") from exc
