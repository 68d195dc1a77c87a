"""What the shell sends: messages encoded once into frames, and written to a peer's socket in
the caller's turn of the event loop when nothing is waiting ahead of them.

A 3 s utterance is a 128 KB JSON frame whose audio literal is a view of the bytes the client
sent (`lingua_protocol._splice`). Joining it into one buffer, and then framing it through
websockets' `Frame.serialize` (which writes header and payload into a `BytesIO`), copies those
128 KB twice more per job on the scheduler's one core before the kernel copies them once
again. `write_now` instead writes the frame header and the message's pieces with one
`writelines`, so the audio is copied only by the kernel.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from lingua_protocol import Message
from websockets.asyncio.server import ServerConnection
from websockets.protocol import State

WRITE_LIMIT = 2 * 1024 * 1024
"""Socket buffer per peer above which messages wait in its outbox for the peer to read."""
_TEXT, _BINARY = 0x1, 0x2
_FIN = 0x80

Buffer = bytes | memoryview


@dataclass(slots=True, frozen=True)
class Frame:
    """One message ready for the wire, as the pieces its encoding produced (`parts`, joined
    only if it has to wait in an outbox); `text` sends it as a text frame without a `str`
    round trip."""

    parts: tuple[Buffer, ...]
    text: bool
    size: int

    @classmethod
    def of(cls, data: bytes, *, text: bool) -> Frame:
        return cls((data,), text, len(data))

    @classmethod
    def pieces(cls, parts: tuple[Buffer, ...], *, text: bool) -> Frame:
        return cls(parts, text, sum(len(p) for p in parts))

    @property
    def data(self) -> bytes:
        """The whole payload in one buffer (for `ws.send` when the frame had to wait)."""
        first = self.parts[0]
        if len(self.parts) == 1 and isinstance(first, bytes):
            return first
        return b"".join(self.parts)


@dataclass(slots=True)
class Latest:
    """A place in a peer's outbox for the newest message of `key` (a partial transcript of
    one utterance): a newer one replaces `frame` while the slot waits, so a slow reader gets
    only the newest partial, in the position of the first one (before that utterance's final
    result, which the core sends after its last partial)."""

    key: tuple[str, int]
    frame: Frame


Outgoing = Frame | Latest | tuple[int, str]


def wire(message: Message, binary: bool) -> Frame:
    """Binary frame only when the peer negotiated it and the audio is already raw: base64
    audio is relayed as base64, raw audio as raw, so the scheduler never re-codes audio for a
    peer that speaks the same transport."""
    audio = message.audio_data()
    if binary and audio is not None and audio.is_raw:
        return Frame.of(message.to_frame(), text=False)
    return Frame.pieces(message.to_json_parts(), text=True)


def frame_header(opcode: int, length: int) -> bytes:
    """RFC 6455 header of an unfragmented, unmasked (server-to-client) frame."""
    if length < 126:
        return bytes((_FIN | opcode, length))
    if length < 65536:
        return struct.pack("!BBH", _FIN | opcode, 126, length)
    return struct.pack("!BBQ", _FIN | opcode, 127, length)


def write_now(ws: ServerConnection, frame: Frame) -> bool:
    """Write a whole message in the caller's turn of the event loop, as `ws.send()` would but
    without a task switch per message, and only while the socket buffer is below the limit.
    False, with nothing written, otherwise; the caller then queues the message for the peer's
    writer task, which waits for the drain.

    With no extension negotiated (the scheduler serves without compression) a data frame is
    its header and its payload, which go out with the message's pieces in one `writelines`
    and no copy; websockets' own framing serves any other case. Frames are written whole and
    in order either way, so control frames websockets writes (pings, pongs, close) fall
    between messages, never inside one."""
    protocol = ws.protocol
    if protocol.state is not State.OPEN or ws.transport.get_write_buffer_size() >= WRITE_LIMIT:
        return False
    if protocol.extensions or protocol.expect_continuation_frame:
        if frame.text:
            protocol.send_text(frame.data)
        else:
            protocol.send_binary(frame.data)
        for chunk in protocol.data_to_send():  # a data frame never ends the stream: no EOF
            ws.transport.write(chunk)
        return True
    for chunk in protocol.data_to_send():  # anything websockets left unwritten goes first
        ws.transport.write(chunk)
    header = frame_header(_TEXT if frame.text else _BINARY, frame.size)
    ws.transport.writelines((header, *frame.parts))
    return True
