"""Messages between a client and the scheduler (`/ws/session`)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from .audio_payload import AudioData
from .base import (
    AudioFormat,
    LangCode,
    Message,
    NonNegInt,
    SampleRate,
    SourceLang,
    UtteranceIndex,
)
from .common import FeatureFlags, PipelineConfig, ResultExtra, RoomMember, ServiceTimings

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
    partial_update_interval_ms: NonNegInt | None = None


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
    """Streaming upload: pieces of one utterance, `seq` from 0, the last with `is_final`."""

    type: Literal["audio_chunk"] = "audio_chunk"
    AUDIO_FIELD: ClassVar[str | None] = "payload"
    PLANNED: ClassVar[str | None] = (
        "no Lingua client sends it yet, and the scheduler answers it with UNSUPPORTED_FEATURE: "
        "send each utterance whole as `utterance`"
    )
    session_id: str
    utterance_index: UtteranceIndex
    seq: NonNegInt
    is_final: bool = False
    payload: AudioData
    audio_format: AudioFormat = "pcm16"
    sample_rate: SampleRate = 16000


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
    """An interim transcript; sent by nodes and relayed to clients."""

    type: Literal["asr_partial"] = "asr_partial"
    PLANNED: ClassVar[str | None] = (
        "no Lingua node sends it yet; the scheduler relays one it receives to the session "
        "whose job it names"
    )
    session_id: str
    utterance_index: UtteranceIndex
    text: str
    is_final: bool = False
    job_id: str | None = None
    node_id: str | None = None


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
