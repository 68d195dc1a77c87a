"""Lingua's wire protocol: every message, every error code, the binary audio frame, the hub
manifest, and the audio helpers every package shares.

Every other Lingua package parses and emits messages through this package only. The public
API is what `__all__` lists here; the submodules are how it is built.
"""

from ._audio import (
    TARGET_RATE_HZ,
    FloatAudio,
    float32_to_pcm16,
    message_audio_duration_s,
    pcm16_duration_s,
    pcm16_to_float32,
    pcm16_wav_bytes,
    read_wav,
    resample,
    to_mono_16k,
    wav_bytes,
    write_wav,
)
from ._audio_payload import AudioData
from ._base import (
    MAX_LANGUAGE_PAIRS,
    MAX_LANGUAGES,
    MAX_UTTERANCE_INDEX,
    PROTOCOL_VERSION,
    SUPPORTED_PROTOCOL_MAJORS,
    AudioFormat,
    Message,
    UtteranceIndex,
)
from ._common import (
    CapabilityByType,
    FeatureFlags,
    GpuInfo,
    HardwareInfo,
    InstalledModel,
    InstalledService,
    JobError,
    LanguageCapabilities,
    LanguagePair,
    PipelineConfig,
    ResourceUsage,
    ResultExtra,
    RoomMember,
    ServiceTimings,
)
from ._errors import ErrorCode, ProtocolError
from ._frames import encode_frame, split_frame
from ._hub_manifest import (
    HUB_ENGINES,
    HUB_ID_PATTERN,
    HUB_MODEL_KINDS,
    HubEngine,
    HubErrorBody,
    HubFileEntry,
    HubModel,
    HubModelInfo,
    HubModelKind,
    HubModelList,
    HubModelVersion,
    path_problem,
)
from ._lazy import lazy_exports
from ._node_messages import (
    JobAck,
    JobAssign,
    JobAudio,
    JobCancel,
    JobResult,
    NodeCommand,
    NodeControl,
    NodeError,
    NodeHeartbeat,
    NodeRegister,
    NodeRegisterAck,
    NodeStatus,
    PairingCode,
    PairingCodeRequest,
)
from ._os_limits import raise_open_files_limit
from ._parsing import (
    is_binary_frame,
    parse_client_message,
    parse_node_message,
    parse_scheduler_message,
    parse_server_message,
)
from ._scheduler_urls import UrlRotation, split_urls
from ._session_messages import (
    AsrPartial,
    AudioChunk,
    ClientHeartbeat,
    Error,
    MissingResult,
    RoomCreate,
    RoomCreateAck,
    RoomError,
    RoomExpired,
    RoomJoin,
    RoomLeave,
    RoomMembers,
    ServerHeartbeat,
    SessionClose,
    SessionCloseAck,
    SessionInit,
    SessionInitAck,
    TranslationResult,
    Utterance,
)
from ._unions import ClientMessage, NodeMessage, SchedulerMessage, ServerMessage


def error_message(
    code: ErrorCode,
    message: str | None = None,
    *,
    field: str | None = None,
    session_id: str | None = None,
    utterance_index: int | None = None,
) -> Error:
    """Build an `error` reply; `field` (the offending field's dotted path) goes into
    `details.field`. Nothing else is passed through: every key an `error` carries is one the
    protocol documents."""
    kwargs: dict[str, object] = {"code": code.value, "message": message or code.meaning}
    if field is not None:
        kwargs["details"] = {"field": field}
    if session_id is not None:
        kwargs["session_id"] = session_id
    if utterance_index is not None:
        kwargs["utterance_index"] = utterance_index
    return Error.model_validate(kwargs)


__all__ = [
    "HUB_ENGINES",
    "HUB_ID_PATTERN",
    "HUB_MODEL_KINDS",
    "MAX_LANGUAGES",
    "MAX_LANGUAGE_PAIRS",
    "MAX_UTTERANCE_INDEX",
    "PROTOCOL_VERSION",
    "SUPPORTED_PROTOCOL_MAJORS",
    "TARGET_RATE_HZ",
    "AsrPartial",
    "AudioChunk",
    "AudioData",
    "AudioFormat",
    "CapabilityByType",
    "ClientHeartbeat",
    "ClientMessage",
    "Error",
    "ErrorCode",
    "FeatureFlags",
    "FloatAudio",
    "GpuInfo",
    "HardwareInfo",
    "HubEngine",
    "HubErrorBody",
    "HubFileEntry",
    "HubModel",
    "HubModelInfo",
    "HubModelKind",
    "HubModelList",
    "HubModelVersion",
    "InstalledModel",
    "InstalledService",
    "JobAck",
    "JobAssign",
    "JobAudio",
    "JobCancel",
    "JobError",
    "JobResult",
    "LanguageCapabilities",
    "LanguagePair",
    "Message",
    "MissingResult",
    "NodeCommand",
    "NodeControl",
    "NodeError",
    "NodeHeartbeat",
    "NodeMessage",
    "NodeRegister",
    "NodeRegisterAck",
    "NodeStatus",
    "PairingCode",
    "PairingCodeRequest",
    "PipelineConfig",
    "ProtocolError",
    "ResourceUsage",
    "ResultExtra",
    "RoomCreate",
    "RoomCreateAck",
    "RoomError",
    "RoomExpired",
    "RoomJoin",
    "RoomLeave",
    "RoomMember",
    "RoomMembers",
    "SchedulerMessage",
    "ServerHeartbeat",
    "ServerMessage",
    "ServiceTimings",
    "SessionClose",
    "SessionCloseAck",
    "SessionInit",
    "SessionInitAck",
    "TranslationResult",
    "UrlRotation",
    "Utterance",
    "UtteranceIndex",
    "encode_frame",
    "error_message",
    "float32_to_pcm16",
    "is_binary_frame",
    "lazy_exports",
    "message_audio_duration_s",
    "parse_client_message",
    "parse_node_message",
    "parse_scheduler_message",
    "parse_server_message",
    "path_problem",
    "pcm16_duration_s",
    "pcm16_to_float32",
    "pcm16_wav_bytes",
    "raise_open_files_limit",
    "read_wav",
    "resample",
    "split_frame",
    "split_urls",
    "to_mono_16k",
    "wav_bytes",
    "write_wav",
]
