"""`Message.to_json_bytes` writes with orjson, not pydantic's serializer, and `Model.trusted`
builds without validating: both must give exactly what the pydantic path gives, for every
message the protocol declares."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from lingua_protocol import (
    AudioData,
    JobAssign,
    Message,
    NodeError,
    PipelineConfig,
    RoomMembers,
    TranslationResult,
    encode_frame,
    parse_client_message,
    parse_node_message,
    parse_scheduler_message,
    parse_server_message,
    split_frame,
)
from lingua_protocol._examples import CLIENT, NODE, SCHEDULER, SERVER

EXAMPLES = (
    [(parse_client_message, e) for e in CLIENT]
    + [(parse_server_message, e) for e in SERVER]
    + [(parse_node_message, e) for e in NODE]
    + [(parse_scheduler_message, e) for e in SCHEDULER]
)


def _examples() -> list[Message]:
    return [parse(orjson.dumps(example)) for parse, example in EXAMPLES]


@pytest.mark.parametrize("message", _examples(), ids=lambda m: m.type)
def test_orjson_writes_what_pydantic_writes(message: Message) -> None:
    assert orjson.loads(message.to_json_bytes()) == message.to_dict()
    if message.AUDIO_FIELD is not None:
        head = message._json_head(message.AUDIO_FIELD)
        assert orjson.loads(head) == message.to_dict(exclude=message.AUDIO_FIELD)


@pytest.mark.parametrize("message", _examples(), ids=lambda m: m.type)
def test_trusted_builds_what_validation_builds(message: Message) -> None:
    fields = {name: getattr(message, name) for name in message.model_fields_set}
    built = type(message).trusted(**fields)
    assert built == message
    assert built.model_fields_set == message.model_fields_set
    assert built.to_json_bytes() == message.to_json_bytes()
    assert type(message).model_validate(built.to_dict()) == message


def test_trusted_fills_defaults_and_factories_like_validation() -> None:
    fields: dict[str, Any] = {
        "job_id": "j",
        "session_id": "s",
        "utterance_index": 3,
        "src_lang": "en",
        "tgt_lang": "zh",
        "audio": AudioData.from_bytes(b"\0\0"),
    }
    built = JobAssign.trusted(**fields)
    validated = JobAssign(**fields)
    assert built == validated
    assert (built.audio_format, built.sample_rate, built.stream, built.next_seq) == (
        "pcm16",
        16000,
        False,
        0,
    )
    # an unset default is not written, as pydantic's exclude_unset leaves it out
    assert "sample_rate" not in orjson.loads(built.to_json_bytes())


def test_trusted_calls_a_default_factory_per_message() -> None:
    first, second = RoomMembers.trusted(room_code="r"), RoomMembers.trusted(room_code="r")
    assert first == RoomMembers(room_code="r")
    assert first.members == []
    assert first.members is not second.members


def test_trusted_refuses_an_undeclared_name() -> None:
    with pytest.raises(TypeError, match="speaker"):
        TranslationResult.trusted(session_id="s", utterance_index=0, speaker="x")


def test_nested_models_write_only_what_was_set_on_them() -> None:
    message = JobAssign(
        job_id="j",
        session_id="s",
        utterance_index=0,
        src_lang="en",
        tgt_lang="zh",
        pipeline=PipelineConfig(use_tts=False),
        audio=AudioData.from_bytes(b"\1\2\3"),
        dialect=None,
    )
    data = orjson.loads(message.to_json_bytes())
    assert data == message.to_dict()
    assert data["pipeline"] == {"use_tts": False}
    assert data["dialect"] is None  # set to None explicitly: written, as before


@pytest.mark.parametrize(
    "audio",
    [
        AudioData.from_bytes(b"\x01\x02\x03\x04"),
        AudioData.from_base64(base64.b64encode(b"\x01\x02\x03\x04").decode()),
        AudioData(literal=memoryview(b'"' + base64.b64encode(b"\x01\x02\x03\x04") + b'"')),
    ],
    ids=["raw", "base64", "literal"],
)
def test_audio_in_every_form_writes_the_same(audio: AudioData) -> None:
    message = TranslationResult(session_id="s", utterance_index=1, tts_audio=audio)
    assert orjson.loads(message.to_json_bytes()) == message.to_dict()
    header, raw = split_frame(encode_frame(message))
    assert header == message.to_dict(exclude="tts_audio")
    assert raw == b"\x01\x02\x03\x04"


def test_a_value_orjson_cannot_write_goes_through_pydantic() -> None:
    details: dict[str, Any] = {"tags": {"b", "a"}}
    message = NodeError.trusted(code="X", message="m", details=details)
    data = orjson.loads(message.to_json_bytes())
    assert data == orjson.loads(orjson.dumps(message.to_dict()))
    assert sorted(data["details"]["tags"]) == ["a", "b"]
