"""Messages between a node and the scheduler (`/ws/node`)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from .audio_payload import AudioData
from .base import (
    AudioFormat,
    LangCode,
    Message,
    NonNegInt,
    PositiveInt,
    SampleRate,
    SourceLang,
    UtteranceIndex,
)
from .common import (
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

# --- node -> scheduler ---------------------------------------------------------------------


class NodeRegister(Message):
    """A node announces itself and what it can run (v0.1 fields plus capability schema v2)."""

    type: Literal["node_register"] = "node_register"
    node_id: str | None = None
    version: str | None = None
    platform: str | None = None
    hardware: HardwareInfo | None = None
    installed_models: list[InstalledModel] | None = None
    features_supported: FeatureFlags | None = None
    accept_public_jobs: bool = True
    capability_schema_version: str | None = None
    installed_services: list[InstalledService] | None = None
    capability_by_type: list[CapabilityByType] | None = None
    language_capabilities: LanguageCapabilities | None = None
    max_concurrent_jobs: PositiveInt | None = None
    protocol_version: str | None = None
    binary_audio: bool | None = None
    auth_token: str | None = None


class NodeHeartbeat(Message):
    """Load report; capability fields, when present, replace the registered ones."""

    type: Literal["node_heartbeat"] = "node_heartbeat"
    node_id: str
    timestamp: int
    resource_usage: ResourceUsage | None = None
    installed_models: list[InstalledModel] | None = None
    installed_services: list[InstalledService] | None = None
    capability_by_type: list[CapabilityByType] | None = None
    language_capabilities: LanguageCapabilities | None = None
    features_supported: FeatureFlags | None = None
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
    text_asr: str | None = None
    text_translated: str | None = None
    tts_audio: AudioData | None = None
    tts_format: AudioFormat | None = None
    tts_sample_rate: SampleRate | None = None
    extra: ResultExtra | None = None
    processing_time_ms: float | None = None
    service_timings: ServiceTimings | None = None
    error: JobError | None = None
    attempt_id: str | None = None


class NodeError(Message):
    type: Literal["node_error"] = "node_error"
    node_id: str | None = None
    code: str
    message: str
    details: dict[str, Any] | None = None


class PairingCodeRequest(Message):
    type: Literal["pairing_code_request"] = "pairing_code_request"
    node_id: str | None = None


# --- scheduler -> node ---------------------------------------------------------------------


class NodeRegisterAck(Message):
    type: Literal["node_register_ack"] = "node_register_ack"
    node_id: str
    message: str | None = None
    status: NodeStatus | None = None
    status_reason: str | None = None
    protocol_version: str | None = None
    binary_audio: bool | None = None
    heartbeat_interval_s: float | None = None


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


class JobCancel(Message):
    type: Literal["job_cancel"] = "job_cancel"
    job_id: str
    attempt_id: str | None = None
    reason: str | None = None


class NodeControl(Message):
    type: Literal["node_control"] = "node_control"
    command: Literal["drain", "resume", "shutdown", "reload_config"]
    reason: str | None = None


class PairingCode(Message):
    type: Literal["pairing_code"] = "pairing_code"
    code: str
    node_id: str | None = None
    expires_in_s: float | None = None


__all__ = [
    "JobAck",
    "JobAssign",
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
