"""Error codes shared by every Lingua component, and the one exception the parsers raise.

Each code carries a one-line meaning and whether a scheduler may retry a job that failed with
it on another node. The table is the single place where that policy lives.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Every error code that may appear in an `error`, `node_error` or failed `job_result`."""

    INVALID_MESSAGE = "INVALID_MESSAGE"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    INVALID_SESSION = "INVALID_SESSION"
    SESSION_CLOSED = "SESSION_CLOSED"
    NODE_UNAVAILABLE = "NODE_UNAVAILABLE"
    NODE_OVERLOADED = "NODE_OVERLOADED"
    MODEL_NOT_AVAILABLE = "MODEL_NOT_AVAILABLE"
    MODEL_LOAD_FAILED = "MODEL_LOAD_FAILED"
    UNSUPPORTED_FEATURE = "UNSUPPORTED_FEATURE"
    INVALID_PAIRING_CODE = "INVALID_PAIRING_CODE"
    INFERENCE_BACKEND_ERROR = "INFERENCE_BACKEND_ERROR"
    NO_AVAILABLE_NODE = "NO_AVAILABLE_NODE"
    JOB_TIMEOUT = "JOB_TIMEOUT"
    MODEL_VERIFY_FAILED = "MODEL_VERIFY_FAILED"
    MODEL_CORRUPTED = "MODEL_CORRUPTED"
    NO_GPU_AVAILABLE = "NO_GPU_AVAILABLE"
    NODE_ID_CONFLICT = "NODE_ID_CONFLICT"
    INVALID_CAPABILITY_SCHEMA = "INVALID_CAPABILITY_SCHEMA"
    AUDIO_DECODE_FAILED = "AUDIO_DECODE_FAILED"
    ROOM_NOT_FOUND = "ROOM_NOT_FOUND"
    ROOM_FULL = "ROOM_FULL"
    ALREADY_IN_ROOM = "ALREADY_IN_ROOM"
    INVALID_ROOM_CODE = "INVALID_ROOM_CODE"
    UNAUTHORIZED = "UNAUTHORIZED"
    RATE_LIMITED = "RATE_LIMITED"
    MESSAGE_TOO_LARGE = "MESSAGE_TOO_LARGE"
    UNSUPPORTED_PROTOCOL_VERSION = "UNSUPPORTED_PROTOCOL_VERSION"

    @property
    def meaning(self) -> str:
        """A one-line English explanation, suitable for an `error.message` fallback."""
        return _TABLE[self][0]

    @property
    def retryable(self) -> bool:
        """True when a job that failed with this code may be retried on another node."""
        return _TABLE[self][1]


_TABLE: dict[ErrorCode, tuple[str, bool]] = {
    ErrorCode.INVALID_MESSAGE: ("The message is not valid JSON or breaks the protocol.", False),
    ErrorCode.INTERNAL_ERROR: ("An unexpected failure inside the component.", True),
    ErrorCode.INVALID_SESSION: ("The session id is unknown or does not match.", False),
    ErrorCode.SESSION_CLOSED: ("The session was closed; open a new one.", False),
    ErrorCode.NODE_UNAVAILABLE: ("The node went away or cannot take jobs now.", True),
    ErrorCode.NODE_OVERLOADED: ("The node is at its job limit.", True),
    ErrorCode.MODEL_NOT_AVAILABLE: ("A model the job needs is not installed or disabled.", True),
    ErrorCode.MODEL_LOAD_FAILED: ("A model is installed but failed to load.", True),
    ErrorCode.UNSUPPORTED_FEATURE: ("A requested feature is not supported.", False),
    ErrorCode.INVALID_PAIRING_CODE: ("The pairing code is unknown, used or expired.", False),
    ErrorCode.INFERENCE_BACKEND_ERROR: ("The inference runtime failed on this node.", True),
    ErrorCode.NO_AVAILABLE_NODE: ("No eligible node can run this job now.", False),
    ErrorCode.JOB_TIMEOUT: ("The job did not finish in time.", True),
    ErrorCode.MODEL_VERIFY_FAILED: ("A downloaded model file failed its SHA256 check.", True),
    ErrorCode.MODEL_CORRUPTED: ("An installed model file no longer matches its hash.", True),
    ErrorCode.NO_GPU_AVAILABLE: ("The job needs a GPU and this node has none free.", True),
    ErrorCode.NODE_ID_CONFLICT: ("Another live connection already uses this node id.", False),
    ErrorCode.INVALID_CAPABILITY_SCHEMA: ("The node's capability report is malformed.", False),
    ErrorCode.AUDIO_DECODE_FAILED: ("The audio could not be decoded.", False),
    ErrorCode.ROOM_NOT_FOUND: ("No room has this code.", False),
    ErrorCode.ROOM_FULL: ("The room has reached its member limit.", False),
    ErrorCode.ALREADY_IN_ROOM: ("This session is already in a room.", False),
    ErrorCode.INVALID_ROOM_CODE: ("A room code is six digits.", False),
    ErrorCode.UNAUTHORIZED: ("Missing or wrong credentials.", False),
    ErrorCode.RATE_LIMITED: ("Too many requests; slow down.", False),
    ErrorCode.MESSAGE_TOO_LARGE: ("The message exceeds the size limit.", False),
    ErrorCode.UNSUPPORTED_PROTOCOL_VERSION: (
        "The peer's protocol version is not supported.",
        False,
    ),
}


class ProtocolError(Exception):
    """The only exception a parse function raises.

    `field` names the offending field (dotted path) when one can be named, so that the reply's
    `details.field` tells the peer exactly what to fix.
    """

    def __init__(self, code: ErrorCode, message: str, field: str | None = None) -> None:
        super().__init__(code, message, field)
        self.code = code
        self.message = message
        self.field = field

    def __str__(self) -> str:
        where = f" (field: {self.field})" if self.field else ""
        return f"{self.code}: {self.message}{where}"
