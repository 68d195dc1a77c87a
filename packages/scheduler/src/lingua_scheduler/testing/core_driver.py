"""A driver for the pure core: fake clock, message builders, and views of the actions.

For tests only: it feeds `SchedulerCore` parsed messages with a `now` it moves by hand, and
records what the core asks the shell to do."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any

from lingua_protocol import (
    JobAssign,
    Message,
    parse_client_message,
    parse_node_message,
)

from .._core.actions import Action, Close, Send
from .._core.engine import SchedulerCore
from .._core.randomness import Randomness
from .._settings import SchedulerSettings

PCM_1S = base64.b64encode(b"\x00\x00" * 16000).decode()
"""One second of silence, 16 kHz pcm16, as base64."""

REFERENCE_REGISTER: dict[str, Any] = {
    "type": "node_register",
    "node_id": "test-node-python-1",
    "version": "test-python-1.0",
    "capability_schema_version": "2.0",
    "platform": "windows",
    "hardware": {"cpu_cores": 8, "memory_gb": 16, "gpus": [{"name": "Test GPU", "memory_gb": 8}]},
    "installed_services": [
        {"service_id": "whisper-asr", "type": "ASR", "device": "GPU", "status": "Running"},
        {"service_id": "m2m100-nmt", "type": "NMT", "device": "GPU", "status": "Running"},
        {"service_id": "piper-tts", "type": "TTS", "device": "CPU", "status": "Running"},
    ],
    "capability_by_type": [
        {"type": "ASR", "ready": True},
        {"type": "NMT", "ready": True},
        {"type": "TTS", "ready": True},
    ],
    "language_capabilities": {
        "supported_language_pairs": [{"src": "en", "tgt": "zh"}, {"src": "zh", "tgt": "en"}]
    },
}
"""The reference node register from the protocol's examples (a Windows test node)."""


def node_register(
    node_id: str,
    pairs: Iterable[tuple[str, str]] = (("en", "zh"), ("zh", "en")),
    **kw: Any,
) -> dict[str, Any]:
    """A `node_register` body for a node serving `pairs` with ASR, NMT and TTS ready."""
    body: dict[str, Any] = {
        "type": "node_register",
        "node_id": node_id,
        "capability_schema_version": "2.0",
        "capability_by_type": [
            {"type": "ASR", "ready": True},
            {"type": "NMT", "ready": True},
            {"type": "TTS", "ready": True},
        ],
        "language_capabilities": {
            "supported_language_pairs": [{"src": s, "tgt": t} for s, t in pairs]
        },
        "max_concurrent_jobs": 4,
    }
    body.update(kw)
    return body


def streaming_node_register(
    node_id: str,
    streams: int = 2,
    pairs: Iterable[tuple[str, str]] = (("en", "zh"), ("zh", "en")),
    **kw: Any,
) -> dict[str, Any]:
    """`node_register` for a node that also holds `streams` streaming jobs at once."""
    return node_register(
        node_id,
        pairs,
        max_concurrent_streams=streams,
        features_supported={"enable_streaming_asr": True},
        **kw,
    )


class Harness:
    """Drives one `SchedulerCore` (seeded randomness, clock at 1000 s) and keeps what it sent."""

    def __init__(self, **settings: Any) -> None:
        self.now = 1000.0
        self.core = SchedulerCore(SchedulerSettings(**settings), randomness=Randomness.seeded(1))
        self.sent: list[tuple[str, Message]] = []
        self.closed: list[tuple[str, int]] = []

    def _apply(self, actions: list[Action]) -> list[Action]:
        for a in actions:
            if isinstance(a, Send):
                self.sent.append((a.conn_id, a.message))
            elif isinstance(a, Close):
                self.closed.append((a.conn_id, a.code))
        return actions

    def node(self, conn: str, body: dict[str, Any]) -> list[Action]:
        return self._apply(self.core.node_message(conn, parse_node_message(_dump(body)), self.now))

    def client(self, conn: str, body: dict[str, Any]) -> list[Action]:
        return self._apply(
            self.core.client_message(conn, parse_client_message(_dump(body)), self.now)
        )

    def advance(self, seconds: float) -> list[Action]:
        self.now += seconds
        return self._apply(self.core.tick(self.now))

    def to(self, conn: str, kind: str | None = None) -> list[Message]:
        return [m for c, m in self.sent if c == conn and (kind is None or m.type == kind)]

    def take(self, conn: str, kind: str | None = None) -> list[Message]:
        out = self.to(conn, kind)
        self.sent = [
            (c, m) for c, m in self.sent if not (c == conn and (kind is None or m.type == kind))
        ]
        return out

    def open_session(self, conn: str, src: str = "en", tgt: str = "zh", **kw: Any) -> str:
        self.client(conn, {"type": "session_init", "src_lang": src, "tgt_lang": tgt, **kw})
        ack = self.take(conn, "session_init_ack")
        assert ack, self.to(conn)
        return ack[-1].session_id  # type: ignore[attr-defined]

    def utter(self, conn: str, sid: str, index: int, **kw: Any) -> list[Action]:
        body = {
            "type": "utterance",
            "session_id": sid,
            "utterance_index": index,
            "audio": PCM_1S,
            "audio_format": "pcm16",
            "sample_rate": 16000,
            **kw,
        }
        return self.client(conn, body)

    def chunk(
        self,
        conn: str,
        sid: str,
        index: int,
        seq: int,
        audio: bytes = b"\x00\x00" * 1600,
        *,
        is_final: bool = False,
        **kw: Any,
    ) -> list[Action]:
        """The client on `conn` sends one `audio_chunk` (default: 0.1 s of 16 kHz pcm16)."""
        body = {
            "type": "audio_chunk",
            "session_id": sid,
            "utterance_index": index,
            "seq": seq,
            "is_final": is_final,
            "payload": base64.b64encode(audio).decode(),
            "audio_format": "pcm16",
            "sample_rate": 16000,
            **kw,
        }
        return self.client(conn, body)

    def partial(
        self, conn: str, job: Message, text: str, stable_text: str = "", **kw: Any
    ) -> list[Action]:
        """The node on `conn` sends an `asr_partial` for `job` (a `job_assign` it received)."""
        assert isinstance(job, JobAssign), job
        body: dict[str, Any] = {
            "type": "asr_partial",
            "job_id": job.job_id,
            "attempt_id": job.attempt_id,
            "session_id": job.session_id,
            "utterance_index": job.utterance_index,
            "text": text,
            "stable_text": stable_text,
            **kw,
        }
        return self.node(conn, body)

    def result(self, conn: str, job: Message, success: bool = True, **kw: Any) -> list[Action]:
        """The node on `conn` answers `job` (a `job_assign` it received)."""
        assert isinstance(job, JobAssign), job
        body: dict[str, Any] = {
            "type": "job_result",
            "job_id": job.job_id,
            "attempt_id": job.attempt_id,
            "success": success,
            "session_id": job.session_id,
            "utterance_index": job.utterance_index,
        }
        if success:
            body.update(
                {"text_asr": f"asr {job.utterance_index}", "text_translated": f"tr {job.tgt_lang}"}
            )
        body.update(kw)
        return self.node(conn, body)


def _dump(body: dict[str, Any]) -> str:
    return json.dumps(body)
