"""Discriminated unions of the messages, one per direction, and the `type` lookup tables."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ._base import Message
from ._node_messages import (
    JobAck,
    JobAssign,
    JobAudio,
    JobCancel,
    JobResult,
    NodeControl,
    NodeError,
    NodeHeartbeat,
    NodeRegister,
    NodeRegisterAck,
    PairingCode,
    PairingCodeRequest,
)
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

ClientMessage = Annotated[
    SessionInit
    | Utterance
    | AudioChunk
    | ClientHeartbeat
    | SessionClose
    | RoomCreate
    | RoomJoin
    | RoomLeave,
    Field(discriminator="type"),
]
ServerMessage = Annotated[
    SessionInitAck
    | TranslationResult
    | AsrPartial
    | MissingResult
    | ServerHeartbeat
    | SessionCloseAck
    | RoomCreateAck
    | RoomMembers
    | RoomExpired
    | RoomError
    | Error,
    Field(discriminator="type"),
]
NodeMessage = Annotated[
    NodeRegister | NodeHeartbeat | JobAck | JobResult | AsrPartial | NodeError | PairingCodeRequest,
    Field(discriminator="type"),
]
SchedulerMessage = Annotated[
    NodeRegisterAck | JobAssign | JobAudio | JobCancel | NodeControl | PairingCode | Error,
    Field(discriminator="type"),
]


def _table(*models: type[Message]) -> dict[str, type[Message]]:
    return {m.model_fields["type"].default: m for m in models}


CLIENT_TYPES = _table(
    SessionInit,
    Utterance,
    AudioChunk,
    ClientHeartbeat,
    SessionClose,
    RoomCreate,
    RoomJoin,
    RoomLeave,
)
SERVER_TYPES = _table(
    SessionInitAck,
    TranslationResult,
    AsrPartial,
    MissingResult,
    ServerHeartbeat,
    SessionCloseAck,
    RoomCreateAck,
    RoomMembers,
    RoomExpired,
    RoomError,
    Error,
)
NODE_TYPES = _table(
    NodeRegister, NodeHeartbeat, JobAck, JobResult, AsrPartial, NodeError, PairingCodeRequest
)
SCHEDULER_TYPES = _table(
    NodeRegisterAck, JobAssign, JobAudio, JobCancel, NodeControl, PairingCode, Error
)
