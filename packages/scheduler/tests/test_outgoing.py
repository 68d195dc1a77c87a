"""The shell's zero-copy frame writer: the header it builds is the one websockets would, and
a message written in pieces arrives as the same bytes `to_json_bytes` gives."""

from __future__ import annotations

import asyncio

import pytest
from lingua_protocol import AudioData, JobAssign, parse_scheduler_message
from lingua_scheduler._outgoing import Frame, frame_header, wire, write_now
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536, 200_000])
@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY])
def test_header_is_the_one_websockets_writes(length: int, opcode: Opcode) -> None:
    payload = b"x" * length
    serialized = WsFrame(opcode, payload).serialize(mask=False)
    assert frame_header(int(opcode), length) + payload == serialized


def _assign(audio: bytes) -> JobAssign:
    return JobAssign(
        job_id="j1",
        attempt_id="a1",
        session_id="s1",
        utterance_index=3,
        src_lang="en",
        tgt_lang="zh",
        audio=AudioData.from_bytes(audio),
    )


def test_wire_keeps_the_audio_literal_as_a_separate_piece() -> None:
    message = _assign(bytes(range(256)) * 400)
    frame = wire(message, binary=False)
    assert len(frame.parts) > 1  # the audio was not joined into the fields
    assert frame.data == message.to_json_bytes()
    assert frame.size == len(message.to_json_bytes())


async def test_pieces_arrive_as_one_message_in_order() -> None:
    """Two multi-piece messages and a plain one, written back to back over a real socket."""
    messages = [_assign(bytes([i]) * (70_000 + i)) for i in range(2)]
    written = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        for m in messages:
            assert write_now(ws, wire(m, binary=False))
        assert write_now(ws, Frame.of(b'{"type":"x"}', text=True))
        written.set()
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", compression=None, max_size=None) as client:
            got = [await client.recv(decode=False) for _ in range(3)]
            await written.wait()
    assert got[:2] == [m.to_json_bytes() for m in messages]
    assert [parse_scheduler_message(g) for g in got[:2]] == messages
    assert got[2] == b'{"type":"x"}'


async def test_compressed_connections_still_get_whole_messages() -> None:
    """With permessage-deflate negotiated, websockets frames the message (the fallback path)."""
    message = _assign(b"\0" * 50_000)

    async def handler(ws: ServerConnection) -> None:
        assert ws.protocol.extensions  # deflate was negotiated
        assert write_now(ws, wire(message, binary=False))
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", max_size=None) as client:
            got = await client.recv(decode=False)
    assert got == message.to_json_bytes()
