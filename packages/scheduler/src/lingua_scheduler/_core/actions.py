"""What the core asks its I/O shell to do. The shell carries these out and decides nothing."""

from __future__ import annotations

from dataclasses import dataclass

from lingua_protocol import ErrorCode, Message, error_message

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
"""WebSocket close codes the core uses in `Close`."""


@dataclass(frozen=True, slots=True)
class Send:
    """Send `message` on connection `conn_id`, in the audio transport the core last set for
    that connection with `SetAudioTransport` (JSON until then)."""

    conn_id: str
    message: Message


@dataclass(frozen=True, slots=True)
class SendLatest(Send):
    """A `Send` whose message only the newest of its `key` matters (a partial transcript):
    while an earlier `SendLatest` with the same key still waits unsent in the connection's
    outbox, the shell puts this message in its place instead of queueing both, so a slow
    reader holds at most one partial per utterance. A shell that does not coalesce may treat
    it as a plain `Send`."""

    key: tuple[str, int]


@dataclass(frozen=True, slots=True)
class Close:
    """Close connection `conn_id` with a WebSocket close code."""

    conn_id: str
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class SetAudioTransport:
    """From now on, send messages whose audio is raw on `conn_id` as binary frames
    (`binary=True`) or as JSON with base64 audio (`binary=False`). The core decides it once per
    connection, when a session opens or resumes or a node registers, from what the peer
    negotiated; it precedes the ack in the same action list."""

    conn_id: str
    binary: bool


Action = Send | SendLatest | Close | SetAudioTransport


def refuse_and_close(
    conn_id: str, code: ErrorCode, text: str, field: str, reason: str
) -> list[Action]:
    """An `error` naming `field`, then a policy close: for a peer that may not go on at all
    (wrong credentials, a protocol this scheduler does not speak, a connection taken over)."""
    return [
        Send(conn_id, error_message(code, text, field=field)),
        Close(conn_id, CLOSE_POLICY, reason),
    ]
