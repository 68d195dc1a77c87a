"""Messages between a client and the scheduler (`/ws/session`)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from ._audio_payload import AudioData
from ._base import (
    AudioFormat,
    LangCode,
    Message,
    NonNegInt,
    ResultText,
    SampleRate,
    SourceLang,
    UtteranceIndex,
)
from ._common import FeatureFlags, PipelineConfig, ResultExtra, RoomMember, ServiceTimings

# --- client -> scheduler -------------------------------------------------------------------


class SessionInit(Message):
    type: Literal["session_init"] = "session_init"
    client_version: str | None = None
    platform: str | None = None
    src_lang: SourceLang
    tgt_lang: LangCode
    dialect: str | None = None
    features: FeatureFlags | None = None
    pipeline: PipelineConfig | None = None
    pairing_code: str | None = None
    protocol_version: str | None = None
    resume_token: str | None = None
    last_received_index: UtteranceIndex | None = None
    """On resume: the highest index whose final message the client has; later ones are replayed."""
    binary_audio: bool | None = None
    enable_streaming_asr: bool | None = None
    """Ask for streaming: utterances may then be sent as `audio_chunk`s while the speaker talks,
    and `asr_partial`s come back. The ack's `streaming` says whether it was granted."""
    partial_update_interval_ms: NonNegInt | None = None
    """How often the client would like a new partial while it streams; the scheduler clamps it
    to its bounds and states the value it uses in the ack."""


class Utterance(Message):
    """One cut of speech. `utterance_index` increases by one per utterance in a session."""

    type: Literal["utterance"] = "utterance"
    AUDIO_FIELD: ClassVar[str | None] = "audio"
    session_id: str
    utterance_index: UtteranceIndex
    manual_cut: bool = False
    src_lang: SourceLang | None = None
    tgt_lang: LangCode | None = None
    dialect: str | None = None
    features: FeatureFlags | None = None
    pipeline: PipelineConfig | None = None
    audio: AudioData
    audio_format: AudioFormat = "pcm16"
    sample_rate: SampleRate = 16000


class AudioChunk(Message):
    """Streaming upload: one piece of one utterance, while the speaker still talks.

    Only in a session whose ack granted `streaming`. `seq` counts the utterance's chunks from 0
    without gaps; the chunk with `is_final` closes the utterance (its `payload` may be empty).
    The first chunk of an index opens the utterance and counts against the flow-control window
    like an `utterance`; its chunks carry raw `pcm16` (the session's sample rate is the first
    chunk's). The utterance ends in exactly one final `translation_result` (or `error`) for its
    index, in index order, as a whole `utterance` does; `asr_partial`s may come before it.
    """

    type: Literal["audio_chunk"] = "audio_chunk"
    AUDIO_FIELD: ClassVar[str | None] = "payload"
    session_id: str
    utterance_index: UtteranceIndex
    seq: NonNegInt
    is_final: bool = False
    payload: AudioData
    audio_format: AudioFormat = "pcm16"
    sample_rate: SampleRate = 16000
    pipeline: PipelineConfig | None = None
    """Read on the first chunk (`seq` 0) only: this utterance's stages, as `utterance.pipeline`
    (e.g. no speech synthesis while the listener has speech off). None: the session's."""


class ClientHeartbeat(Message):
    type: Literal["client_heartbeat"] = "client_heartbeat"
    session_id: str
    timestamp: int


class SessionClose(Message):
    type: Literal["session_close"] = "session_close"
    session_id: str
    reason: str | None = None


class RoomCreate(Message):
    type: Literal["room_create"] = "room_create"
    session_id: str | None = None
    display_name: str | None = None
    preferred_lang: LangCode | None = None


class RoomJoin(Message):
    type: Literal["room_join"] = "room_join"
    session_id: str | None = None
    room_code: str
    display_name: str | None = None
    preferred_lang: LangCode | None = None


class RoomLeave(Message):
    type: Literal["room_leave"] = "room_leave"
    session_id: str | None = None
    room_code: str | None = None


# --- scheduler -> client -------------------------------------------------------------------


class SessionInitAck(Message):
    type: Literal["session_init_ack"] = "session_init_ack"
    session_id: str
    assigned_node_id: str | None = None
    message: str | None = None
    protocol_version: str | None = None
    resume_token: str | None = None
    binary_audio: bool | None = None
    resumed: bool | None = None
    last_delivered_index: int | None = None
    """On resume: every index up to this one has its final message on the way; resend only
    later utterances that have no result yet (in-flight ones are deduplicated)."""
    max_in_flight_utterances: NonNegInt | None = None
    """Flow control: how many utterances this session may have accepted and unanswered at once.
    An utterance beyond it is answered at once with RATE_LIMITED for its index. None: no limit
    stated (a v0.1 scheduler)."""
    max_in_flight_bytes: NonNegInt | None = None
    """Flow control: how many bytes of unanswered utterance audio (decoded size) this session may
    have in flight. Beyond it: RATE_LIMITED for that index. None: no limit stated."""
    streaming: bool | None = None
    """True when the session asked for streaming and the scheduler grants it: `audio_chunk`s
    are accepted and `asr_partial`s are sent. Absent or false: whole utterances only."""
    partial_update_interval_ms: NonNegInt | None = None
    """Streaming: the interval between partial updates the nodes are asked for."""
    max_stream_ms: NonNegInt | None = None
    """Streaming: the longest one streamed utterance may be (milliseconds of audio); a chunk
    beyond it ends the utterance with MESSAGE_TOO_LARGE for its index."""


class TranslationResult(Message):
    type: Literal["translation_result"] = "translation_result"
    AUDIO_FIELD: ClassVar[str | None] = "tts_audio"
    session_id: str
    utterance_index: UtteranceIndex
    job_id: str | None = None
    text_asr: str | None = None
    text_translated: str | None = None
    tts_audio: AudioData | None = None
    tts_format: AudioFormat | None = None
    tts_sample_rate: SampleRate | None = None
    extra: ResultExtra | None = None
    processing_time_ms: float | None = None
    service_timings: ServiceTimings | None = None
    node_id: str | None = None
    src_lang: str | None = None
    tgt_lang: str | None = None
    room_code: str | None = None
    speaker_session_id: str | None = None
    speaker_display_name: str | None = None
    tts_audio_omitted: str | None = None
    """Set when the scheduler kept this result without its speech to stay within a memory
    budget: 'hold_budget' (results held for ordering or for a disconnected client) or
    'replay_budget' (a replayed result). The text is always kept."""


class AsrPartial(Message):
    """An interim transcript of an utterance still being spoken or recognised; never final.

    Node -> scheduler: the node's current hypothesis for a streaming job. Scheduler -> client:
    the same, relayed at once (partials never wait for earlier indexes, and never delay or
    reorder final results). `text` is the whole hypothesis; `stable_text` is its prefix that
    will not change any more (render it as committed, the rest as a guess). `revision` grows
    with every partial of an utterance, across node failovers (the scheduler sets it on the
    way to a client): a client ignores a partial whose revision is not above the last one it
    showed, and every partial of an index once its final result has arrived. In a room,
    listeners get the speaker's partials with `room_code` and `speaker_session_id` set;
    `text_translated` is the translation of `stable_text` when the node has one.
    """

    type: Literal["asr_partial"] = "asr_partial"
    session_id: str
    utterance_index: UtteranceIndex
    text: ResultText
    stable_text: ResultText = ""
    revision: NonNegInt = 0
    is_final: bool = False
    """Always false in Lingua (the final answer is `translation_result`); kept for v0.1."""
    audio_ms: NonNegInt | None = None
    """How much of the utterance's audio (milliseconds from its start) the hypothesis covers."""
    text_translated: ResultText | None = None
    tgt_lang: str | None = None
    job_id: str | None = None
    attempt_id: str | None = None
    node_id: str | None = None
    room_code: str | None = None
    speaker_session_id: str | None = None
    speaker_display_name: str | None = None


class MissingResult(Message):
    """The scheduler gave up waiting for this index, so that later results can flow."""

    type: Literal["missing_result"] = "missing_result"
    session_id: str
    utterance_index: UtteranceIndex
    reason: str


class ServerHeartbeat(Message):
    type: Literal["server_heartbeat"] = "server_heartbeat"
    session_id: str
    timestamp: int


class SessionCloseAck(Message):
    type: Literal["session_close_ack"] = "session_close_ack"
    session_id: str


class RoomCreateAck(Message):
    type: Literal["room_create_ack"] = "room_create_ack"
    room_code: str
    session_id: str | None = None


class RoomMembers(Message):
    type: Literal["room_members"] = "room_members"
    room_code: str
    members: list[RoomMember] = Field(default_factory=list)


class RoomExpired(Message):
    type: Literal["room_expired"] = "room_expired"
    room_code: str
    reason: str | None = None


class RoomError(Message):
    """A room member's utterance could not be translated for this listener; not a final answer.

    `utterance_index` is the speaker's; the listener's own sequence of indexes is untouched.
    """

    type: Literal["room_error"] = "room_error"
    room_code: str
    session_id: str
    """The listener this message goes to."""
    speaker_session_id: str
    utterance_index: UtteranceIndex
    """The *speaker's* index: never an answer to one of the listener's own utterances."""
    code: str
    message: str
    speaker_display_name: str | None = None
    tgt_lang: str | None = None


class Error(Message):
    """An error reply. `details.field` names the offending field when there is one."""

    type: Literal["error"] = "error"
    code: str
    message: str
    details: dict[str, Any] | None = None
    session_id: str | None = None
    utterance_index: UtteranceIndex | None = None
