"""Binary audio frames: layout, round trip, and rejection of broken frames."""

from __future__ import annotations

import struct

import orjson
import pytest
from lingua_protocol import (
    AudioData,
    JobAssign,
    ProtocolError,
    TranslationResult,
    Utterance,
    parse_client_message,
    parse_scheduler_message,
    parse_server_message,
)

AUDIO = bytes(range(256)) * 10


def test_frame_layout_is_length_header_then_raw_audio() -> None:
    message = Utterance(session_id="s", utterance_index=3, audio=AudioData.from_bytes(AUDIO))
    frame = message.to_frame()
    (n,) = struct.unpack(">I", frame[:4])
    header = orjson.loads(frame[4 : 4 + n])
    assert header["type"] == "utterance"
    assert "audio" not in header
    assert frame[4 + n :] == AUDIO


def test_frame_and_json_forms_parse_to_the_same_message() -> None:
    message = JobAssign(
        job_id="j",
        session_id="s",
        utterance_index=1,
        src_lang="en",
        tgt_lang="zh",
        audio=AudioData.from_bytes(AUDIO),
    )
    from_frame = parse_scheduler_message(message.to_frame())
    from_json = parse_scheduler_message(message.to_json())
    assert from_frame == from_json == message
    audio = from_frame.audio_data()
    assert audio is not None
    assert audio.is_raw
    assert audio.to_bytes() == AUDIO


def test_relaying_keeps_the_arrival_form_without_conversion() -> None:
    message = parse_client_message(
        Utterance(session_id="s", utterance_index=0, audio=AudioData.from_bytes(AUDIO)).to_json()
    )
    audio = message.audio_data()
    assert audio is not None
    assert not audio.is_raw
    assert len(audio) == len(AUDIO)


def test_messages_without_audio_go_as_plain_json() -> None:
    result = TranslationResult(session_id="s", utterance_index=0, text_asr="hi")
    assert result.to_frame().startswith(b"{")
    assert parse_server_message(result.to_frame()) == result


@pytest.mark.parametrize(
    "frame",
    [b"\x00\x00", b"\x00\x00\x00\xff{}", b"\x00\x00\x00\x02[]", b"\x00\x00\x00\x03{x}"],
)
def test_broken_frames_are_protocol_errors(frame: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_client_message(frame)


def test_a_frame_for_a_message_without_audio_is_rejected() -> None:
    header = orjson.dumps({"type": "session_close", "session_id": "s"})
    with pytest.raises(ProtocolError):
        parse_client_message(struct.pack(">I", len(header)) + header + b"xx")
