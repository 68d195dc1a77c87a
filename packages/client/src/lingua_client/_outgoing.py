"""The values the session core works with: one utterance from the moment it is said until
its final answer (`Outgoing`), what the core hands the user interface (`Delivery`), which
message finally answers an index (`final_index`), and the backoff curve. Plain data, no I/O."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from lingua_protocol import (
    AudioFormat,
    Error,
    Message,
    MissingResult,
    PipelineConfig,
    TranslationResult,
)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: attempt n waits uniform(d/2, d), d = min_s * 2**n
    capped at max_s. The same curve serves reconnects and RATE_LIMITED retries."""

    min_s: float = 0.3
    max_s: float = 10.0

    def delay_s(self, attempt: int, rng: random.Random) -> float:
        d = min(self.max_s, self.min_s * 2 ** min(max(attempt, 0), 30))
        return rng.uniform(d / 2, d)


@dataclass
class Outgoing:
    """One utterance the user said, from the moment it is cut until its final answer."""

    local_index: int
    audio: bytes | bytearray
    audio_format: AudioFormat
    sample_rate: int
    manual_cut: bool
    pipeline: PipelineConfig | None
    spoken_at: float
    wire_index: int | None = None
    not_before: float = 0.0
    rate_limited: int = 0
    resend: bool = False
    closed: bool = True
    """False while a streamed utterance is still being spoken (more audio may come)."""
    reserved_bytes: int = 0
    """What this utterance holds of `max_unanswered_bytes`: its size, or for an open stream
    the reservation made when it opened."""
    as_chunks: bool = False
    """In flight as `audio_chunk`s (not as one `utterance`) in the current session."""
    next_seq: int = 0
    """The next chunk to send in the current connection (0 again after a resume)."""
    chunk_ends: list[int] = field(default_factory=list)
    """Where each chunk sent so far ends in `audio`: chunk `seq` is always the same bytes,
    so a resend after a resume repeats exactly what the scheduler may already hold (it drops
    a seq it has). At most `max_stream_bytes / min_chunk_bytes` entries (300 by default)."""
    final_recorded: bool = False
    """The last chunk in `chunk_ends` carried `is_final`."""
    first_sent_at: float | None = None
    """When its first audio went out (for a partial's `t_ms`); kept across resends."""
    last_revision: int = -1
    refused_stream: bool = False
    """Its first chunk got RATE_LIMITED: the scheduler's complaints about the chunks that
    followed it are echoes of that refusal, not an answer, until it is sent again."""

    @property
    def size_bytes(self) -> int:
        return len(self.audio)

    def restart_upload(self) -> None:
        """The next send starts again from seq 0 (or whole), with the same chunks as before."""
        self.next_seq = 0


@dataclass(frozen=True)
class Delivery:
    """A message for the user interface, its `utterance_index` already the local index.
    `latency_ms` is from the end of speech to this final answer, when it is one."""

    message: Message
    latency_ms: float | None = None
    t_ms: float | None = None
    """For an `asr_partial`: milliseconds since the utterance's first audio was sent."""


def final_index(message: Message, session_id: str | None) -> int | None:
    """The wire index this message finally answers in our session, if it does. (`int()`:
    the index is an `int` already; it keeps mypy --strict clean where `lingua_protocol` is
    seen from outside its sources, untyped.)"""
    if isinstance(message, TranslationResult):
        if message.speaker_session_id not in (None, message.session_id):
            return None  # another room member's words: not an answer to one of ours
        return int(message.utterance_index)
    if isinstance(message, MissingResult):
        return int(message.utterance_index)
    if isinstance(message, Error) and message.utterance_index is not None:
        # A room member's failed utterance reaches listeners as `room_error`, never as `error`.
        return int(message.utterance_index)
    return None
