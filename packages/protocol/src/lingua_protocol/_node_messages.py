"""Messages between a node and the scheduler (`/ws/node`)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from ._audio_payload import AudioData
from ._base import (
    MAX_MODELS,
    MAX_SERVICES,
    MAX_STAGE_TYPES,
    AudioFormat,
    Credential,
    IdText,
    LangCode,
    Message,
    NonNegInt,
    PositiveInt,
    ResultText,
    SampleRate,
    SourceLang,
    Text,
    UtteranceIndex,
)
from ._common import (
    CapabilityByType,
    FeatureFlags,
    HardwareInfo,
    InstalledModel,
    InstalledService,
    JobError,
    LanguageCapabilities,
    PipelineConfig,
    ResourceUsage,
    ResultExtra,
    ServiceTimings,
)

NodeStatus = Literal["registering", "ready", "degraded", "draining", "offline"]
NodeCommand = Literal["drain", "resume", "shutdown", "reload_config"]
"""An operator command for a node (`node_control.command`)."""

# --- node -> scheduler ---------------------------------------------------------------------


class NodeRegister(Message):
    """A node announces itself and what it can run (v0.1 fields plus capability schema v2).

    `node_credential` is the node's own secret (32 to 128 characters), bound to `node_id` the
    first time the scheduler sees that id (trust on first use); every later registration of
    the id must present it. A node that sends none on its first registration is handed one in
    `node_register_ack.node_credential`. Every string and list is capped (ids and names 128
    characters, language codes 35, reasons 1024; 256 models, 64 services, 16 stage types,
    512 languages per list, 4096 language pairs per list): over a cap, the register is
    refused as `INVALID_MESSAGE`.
    """

    type: Literal["node_register"] = "node_register"
    node_id: IdText | None = None
    version: IdText | None = None
    platform: IdText | None = None
    hardware: HardwareInfo | None = None
    installed_models: list[InstalledModel] | None = Field(default=None, max_length=MAX_MODELS)
    features_supported: FeatureFlags | None = None
    accept_public_jobs: bool = True
    capability_schema_version: IdText | None = None
    installed_services: list[InstalledService] | None = Field(default=None, max_length=MAX_SERVICES)
    capability_by_type: list[CapabilityByType] | None = Field(
        default=None, max_length=MAX_STAGE_TYPES
    )
    language_capabilities: LanguageCapabilities | None = None
    max_concurrent_jobs: PositiveInt | None = None
    max_concurrent_streams: NonNegInt | None = None
    """How many streaming jobs (`job_assign` with `stream`) the node holds at once in real time;
    0 or absent: the node does not stream."""
    protocol_version: IdText | None = None
    binary_audio: bool | None = None
    auth_token: Text | None = None
    node_credential: Credential | None = None


class NodeHeartbeat(Message):
    """Load report; capability fields, when present, replace the registered ones."""

    type: Literal["node_heartbeat"] = "node_heartbeat"
    CAPABILITY_FIELDS: ClassVar[tuple[str, ...]] = (
        "installed_models",
        "installed_services",
        "capability_by_type",
        "language_capabilities",
        "features_supported",
        "max_concurrent_streams",
    )
    """The register's fields a heartbeat may carry again when the node's models change."""
    node_id: IdText
    timestamp: int
    resource_usage: ResourceUsage | None = None
    installed_models: list[InstalledModel] | None = Field(default=None, max_length=MAX_MODELS)
    installed_services: list[InstalledService] | None = Field(default=None, max_length=MAX_SERVICES)
    capability_by_type: list[CapabilityByType] | None = Field(
        default=None, max_length=MAX_STAGE_TYPES
    )
    language_capabilities: LanguageCapabilities | None = None
    features_supported: FeatureFlags | None = None
    max_concurrent_streams: NonNegInt | None = None
    draining: bool | None = None


class JobAck(Message):
    type: Literal["job_ack"] = "job_ack"
    job_id: str
    node_id: str | None = None
    attempt_id: str | None = None
    session_id: str | None = None
    utterance_index: UtteranceIndex | None = None


class JobResult(Message):
    """Success (`success: true`, texts and audio) or failure (`success: false`, `error`)."""

    type: Literal["job_result"] = "job_result"
    AUDIO_FIELD: ClassVar[str | None] = "tts_audio"
    job_id: str
    node_id: str | None = None
    session_id: str | None = None
    utterance_index: UtteranceIndex | None = None
    success: bool
    text_asr: ResultText | None = None
    text_translated: ResultText | None = None
    tts_audio: AudioData | None = None
    tts_format: AudioFormat | None = None
    tts_sample_rate: SampleRate | None = None
    extra: ResultExtra | None = None
    processing_time_ms: float | None = None
    service_timings: ServiceTimings | None = None
    error: JobError | None = None
    attempt_id: str | None = None


class NodeError(Message):
    """A node reports a problem that belongs to no job (a job's failure is its `job_result`)."""

    type: Literal["node_error"] = "node_error"
    node_id: IdText | None = None
    code: IdText
    message: Text
    details: dict[str, Any] | None = None


class PairingCodeRequest(Message):
    type: Literal["pairing_code_request"] = "pairing_code_request"
    node_id: str | None = None


# --- scheduler -> node ---------------------------------------------------------------------


class NodeRegisterAck(Message):
    """`node_credential` is set only when the node presented none and its id was new: the
    node keeps it and presents it in every later `node_register`."""

    type: Literal["node_register_ack"] = "node_register_ack"
    node_id: str
    message: str | None = None
    status: NodeStatus | None = None
    status_reason: str | None = None
    protocol_version: str | None = None
    binary_audio: bool | None = None
    heartbeat_interval_s: float | None = None
    node_credential: str | None = None


class JobAssign(Message):
    type: Literal["job_assign"] = "job_assign"
    AUDIO_FIELD: ClassVar[str | None] = "audio"
    job_id: str
    session_id: str
    utterance_index: UtteranceIndex
    src_lang: SourceLang
    tgt_lang: LangCode
    dialect: str | None = None
    features: FeatureFlags | None = None
    pipeline: PipelineConfig | None = None
    audio: AudioData
    audio_format: AudioFormat = "pcm16"
    sample_rate: SampleRate = 16000
    attempt_id: str | None = None
    timeout_ms: NonNegInt | None = None
    stream: bool = False
    """A streaming job: `audio` is the utterance's audio so far and more follows in `job_audio`
    messages (from `next_seq` on) until one with `is_final`; the node sends `asr_partial`s as
    it recognises and one `job_result` after the final chunk."""
    stream_closed: bool = False
    """Streaming job whose audio is already complete in `audio` (a failover after the last
    chunk): no `job_audio` follows; recognise and answer."""
    next_seq: NonNegInt = 0
    """Streaming: the `seq` of the first `job_audio` that follows this assignment."""
    partial_update_interval_ms: NonNegInt | None = None
    """Streaming: how often the session wants a new partial."""

    def answer(self, node_id: str | None, *, success: bool, **fields: Any) -> JobResult:
        """The `job_result` for this attempt: its ids copied, `fields` added (a node builds
        every answer, success, failure or refusal, through here)."""
        return JobResult(
            job_id=self.job_id,
            attempt_id=self.attempt_id,
            node_id=node_id,
            session_id=self.session_id,
            utterance_index=self.utterance_index,
            success=success,
            **fields,
        )


class JobAudio(Message):
    """More audio for a streaming job, in order (`seq` continues from the assignment's
    `next_seq`); `is_final` closes the utterance. A node drops audio for a job it does not
    hold (a cancelled or finished one)."""

    type: Literal["job_audio"] = "job_audio"
    AUDIO_FIELD: ClassVar[str | None] = "payload"
    job_id: str
    attempt_id: str | None = None
    seq: NonNegInt
    is_final: bool = False
    payload: AudioData
    audio_format: AudioFormat = "pcm16"
    sample_rate: SampleRate = 16000


class JobCancel(Message):
    type: Literal["job_cancel"] = "job_cancel"
    job_id: str
    attempt_id: str | None = None
    reason: str | None = None


class NodeControl(Message):
    """To a node: an operator command. On `/ws/admin` (operator -> scheduler) `node_id` names
    the node the command is for."""

    type: Literal["node_control"] = "node_control"
    command: NodeCommand
    reason: Text | None = None
    node_id: IdText | None = None


class PairingCode(Message):
    type: Literal["pairing_code"] = "pairing_code"
    code: str
    node_id: str | None = None
    expires_in_s: float | None = None


__all__ = [
    "JobAck",
    "JobAssign",
    "JobAudio",
    "JobCancel",
    "JobResult",
    "LangCode",
    "NodeControl",
    "NodeError",
    "NodeHeartbeat",
    "NodeRegister",
    "NodeRegisterAck",
    "NodeStatus",
    "PairingCode",
    "PairingCodeRequest",
    "SourceLang",
]
