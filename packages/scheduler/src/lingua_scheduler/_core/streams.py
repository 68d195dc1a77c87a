"""Streamed utterances: what the scheduler keeps of one, and the pure rules about it.

A session that asked for streaming (and was granted it) may send an utterance as
`audio_chunk`s while the speaker talks. The scheduler keeps every chunk of the utterance
(`Stream.audio`, raw pcm16) until its final result, so that a node that dies mid-utterance is
replaced and the new node gets everything so far. The rules here are plain functions on plain
values: the negotiation (`negotiate`), the checks a chunk must pass before anything changes
(`check_chunk`), whether a node can take one more stream (`has_stream_room`), and the
assignment a streaming node receives (`stream_assign`). `stream_side.StreamSide` applies them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from lingua_protocol import AudioChunk, AudioData, ErrorCode, JobAssign, PipelineConfig, SessionInit

from .._settings import SchedulerSettings
from .errors import CoreError
from .registry import NodeRecord
from .selection import CapableNodes, pick_node

BYTES_PER_SAMPLE = 2
"""Streamed audio is pcm16 only: the scheduler concatenates chunks, which only a raw sample
format allows."""


@dataclass(slots=True)
class Stream:
    """One streamed utterance. `job_id` names its streaming job (the one that gets the chunks
    as `job_audio` and sends partials); None while the utterance is buffered because no
    streaming node could take it, in which case its jobs are created, as for a whole
    utterance, at the final chunk."""

    session_id: str
    utterance_index: int
    sample_rate: int
    opened_at: float
    close_by: float
    audio: bytearray = field(default_factory=bytearray)
    next_seq: int = 0
    closed: bool = False
    closed_at: float | None = None
    partial_interval_ms: int | None = None
    pipeline: PipelineConfig | None = None
    """The first chunk's own pipeline, if it carried one (else the session's applies)."""
    revision: int = 0
    """The last `revision` stamped on a partial of this utterance (across failovers)."""
    job_id: str | None = None

    @property
    def key(self) -> str:
        """The deadline key of this stream (`("stream", key)`)."""
        return f"{self.utterance_index}:{self.session_id}"

    def duration_ms(self, extra_bytes: int = 0) -> float:
        samples = (len(self.audio) + extra_bytes) / BYTES_PER_SAMPLE
        return samples * 1000.0 / self.sample_rate


def split_key(key: str) -> tuple[str, int]:
    """(session id, utterance index) of a `Stream.key`."""
    index, _, session_id = key.partition(":")
    return session_id, int(index)


def negotiate(settings: SchedulerSettings, m: SessionInit) -> tuple[bool | None, int | None]:
    """(granted, partial interval ms) for a `session_init`: (None, None) when it did not ask,
    so a session that does not ask sees nothing new in its ack."""
    if not m.enable_streaming_asr:
        return None, None
    if not settings.streaming_enabled:
        return False, None
    wanted = m.partial_update_interval_ms or settings.partial_update_interval_ms
    low, high = settings.min_partial_update_interval_ms, settings.max_partial_update_interval_ms
    return True, max(low, min(high, wanted))


def check_chunk(settings: SchedulerSettings, stream: Stream | None, m: AudioChunk) -> bytes:
    """The chunk's raw audio, or `CoreError` naming what is wrong with it (for the chunk's
    index). `stream` is the utterance's stream, None for the chunk that would open it. Changes
    nothing."""
    index = m.utterance_index
    expected = 0 if stream is None else stream.next_seq
    if m.seq != expected:
        raise CoreError(
            ErrorCode.INVALID_MESSAGE,
            f"utterance {index}: chunk seq {m.seq}, expected {expected} (no gaps)",
            field="seq",
            utterance_index=index,
        )
    if m.seq >= settings.max_stream_chunks:
        raise CoreError(
            ErrorCode.MESSAGE_TOO_LARGE,
            f"utterance {index}: more than {settings.max_stream_chunks} chunks",
            field="seq",
            utterance_index=index,
        )
    if m.audio_format != "pcm16":
        raise CoreError(
            ErrorCode.UNSUPPORTED_FEATURE,
            f"utterance {index}: streamed audio is pcm16 only, not {m.audio_format}",
            field="audio_format",
            utterance_index=index,
        )
    if stream is not None and m.sample_rate != stream.sample_rate:
        raise CoreError(
            ErrorCode.INVALID_MESSAGE,
            f"utterance {index}: sample rate {m.sample_rate} Hz, the utterance started at "
            f"{stream.sample_rate} Hz",
            field="sample_rate",
            utterance_index=index,
        )
    if len(m.payload) > settings.max_chunk_bytes:
        raise CoreError(
            ErrorCode.MESSAGE_TOO_LARGE,
            f"utterance {index}: chunk of {len(m.payload)} bytes, at most "
            f"{settings.max_chunk_bytes}",
            field="payload",
            utterance_index=index,
        )
    try:
        raw = m.payload.to_bytes()
    except ValueError as exc:
        raise CoreError(
            ErrorCode.AUDIO_DECODE_FAILED,
            f"utterance {index}: {exc}",
            field="payload",
            utterance_index=index,
        ) from exc
    if len(raw) % BYTES_PER_SAMPLE:
        raise CoreError(
            ErrorCode.AUDIO_DECODE_FAILED,
            f"utterance {index}: pcm16 chunk of an odd number of bytes ({len(raw)})",
            field="payload",
            utterance_index=index,
        )
    before = len(stream.audio) if stream is not None else 0
    total_ms = (before + len(raw)) / BYTES_PER_SAMPLE * 1000.0 / m.sample_rate
    if total_ms > settings.max_stream_ms:
        raise CoreError(
            ErrorCode.MESSAGE_TOO_LARGE,
            f"utterance {index}: streamed audio past {settings.max_stream_ms} ms",
            field="payload",
            utterance_index=index,
        )
    return raw


def stream_slots(node: NodeRecord) -> int:
    """How many streams the node holds at once (0: it does not stream). A node that says
    `enable_streaming_asr: false` does not stream whatever its `max_concurrent_streams`."""
    register = node.register
    flags = register.features_supported
    if flags is not None and flags.enable_streaming_asr is False:
        return 0
    return register.max_concurrent_streams or 0


def has_stream_room(node: NodeRecord) -> bool:
    """The node can take one more stream now (its streams are counted apart from its jobs)."""
    return len(node.stream_jobs) < stream_slots(node)


def pick_stream_node(
    capable: CapableNodes,
    rng: random.Random,
    sticky_node_id: str | None,
    exclude: frozenset[str],
) -> NodeRecord | None:
    """The existing selection among the capable nodes with a free stream slot, or None."""
    streaming = [n for n in capable if stream_slots(n) > 0]
    if not streaming:
        return None
    return pick_node(
        CapableNodes(streaming, capable.features),
        rng,
        sticky_node_id,
        exclude,
        has_room=has_stream_room,
    )


def stream_assign(base: JobAssign, stream: Stream, interval_ms: int | None) -> JobAssign:
    """The streaming form of a job's assignment: all audio so far, where the `job_audio`s that
    follow start, and whether the final chunk already came."""
    return base.model_copy(
        update={
            "audio": AudioData.from_bytes(bytes(stream.audio)),
            "audio_format": "pcm16",
            "sample_rate": stream.sample_rate,
            "stream": True,
            "stream_closed": stream.closed,
            "next_seq": stream.next_seq,
            "partial_update_interval_ms": interval_ms,
        }
    )
