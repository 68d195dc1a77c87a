"""What the core asks its I/O shell to do."""

from __future__ import annotations

from dataclasses import dataclass

from lingua_protocol import Message


@dataclass(frozen=True, slots=True)
class Send:
    """Send `message` on connection `conn_id` (binary frame if the peer negotiated it)."""

    conn_id: str
    message: Message


@dataclass(frozen=True, slots=True)
class Close:
    """Close connection `conn_id` with a WebSocket close code."""

    conn_id: str
    code: int
    reason: str


Action = Send | Close
