"""Bad input raises ProtocolError with the right code and field; nothing else escapes."""

from __future__ import annotations

import base64
import json

import pytest
from lingua_protocol import (
    ErrorCode,
    ProtocolError,
    SessionInit,
    Utterance,
    error_message,
    parse_client_message,
    parse_node_message,
)

GOOD_UTTERANCE = {
    "type": "utterance",
    "session_id": "s-1",
    "utterance_index": 0,
    "audio": base64.b64encode(b"\x00\x01" * 8).decode(),
    "audio_format": "pcm16",
    "sample_rate": 16000,
}


def _err(data: str | bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        parse_client_message(data)
    return info.value


def _with(**changes: object) -> str:
    body = dict(GOOD_UTTERANCE)
    for key, value in changes.items():
        if value is ...:
            body.pop(key)
        else:
            body[key] = value
    return json.dumps(body)


def test_invalid_json_is_invalid_message() -> None:
    assert _err("{not json").code is ErrorCode.INVALID_MESSAGE


def test_non_object_json_is_rejected() -> None:
    assert _err("[1, 2]").code is ErrorCode.INVALID_MESSAGE


def test_missing_type_names_the_field() -> None:
    assert _err('{"session_id": "x"}').field == "type"


def test_unknown_type_names_the_field() -> None:
    err = _err('{"type": "teleport"}')
    assert err.field == "type"
    assert "teleport" in err.message


def test_node_message_type_is_unknown_on_the_session_endpoint() -> None:
    assert _err('{"type": "node_heartbeat", "node_id": "n", "timestamp": 1}').field == "type"


def test_missing_audio_names_the_field() -> None:
    err = _err(_with(audio=...))
    assert err.field == "audio"
    assert err.message == "missing field: audio"


def test_mistyped_index_is_rejected_not_coerced() -> None:
    assert _err(_with(utterance_index="4")).field == "utterance_index"


def test_negative_index_is_rejected() -> None:
    assert _err(_with(utterance_index=-1)).field == "utterance_index"


def test_invalid_base64_is_rejected() -> None:
    assert _err(_with(audio="%%%notbase64")).field == "audio"


def test_unknown_audio_format_is_rejected() -> None:
    assert _err(_with(audio_format="mp9")).field == "audio_format"


@pytest.mark.parametrize("code", ["EN", "english", "z", "en_US", ""])
def test_malformed_language_codes_are_rejected(code: str) -> None:
    body = {"type": "session_init", "src_lang": code, "tgt_lang": "en"}
    assert _err(json.dumps(body)).field == "src_lang"


def test_auto_is_a_source_language_but_not_a_target() -> None:
    assert isinstance(
        parse_client_message('{"type":"session_init","src_lang":"auto","tgt_lang":"en"}'),
        SessionInit,
    )
    assert _err('{"type":"session_init","src_lang":"en","tgt_lang":"auto"}').field == "tgt_lang"


def test_nested_field_errors_carry_a_dotted_path() -> None:
    body = {
        "type": "node_heartbeat",
        "node_id": "n",
        "timestamp": 1,
        "resource_usage": {"cpu_percent": "high"},
    }
    with pytest.raises(ProtocolError) as info:
        parse_node_message(json.dumps(body))
    assert info.value.field == "resource_usage.cpu_percent"


def test_unknown_fields_from_newer_peers_are_accepted_and_not_relayed() -> None:
    """A newer peer's field does not fail the message, and it is not kept: nothing that the
    protocol does not declare travels on (relayed messages carry declared fields only)."""
    message = parse_client_message(_with(future_field={"a": 1}))
    assert isinstance(message, Utterance)
    assert "future_field" not in json.loads(message.to_json())
    assert message.model_extra in (None, {})


def test_deeply_nested_json_is_a_protocol_error() -> None:
    assert _err('{"type": "utterance", "x": ' + "[" * 5000 + "]" * 5000 + "}").code is (
        ErrorCode.INVALID_MESSAGE
    )


def test_error_codes_have_meaning_and_retry_policy() -> None:
    for code in ErrorCode:
        assert code.meaning
        assert isinstance(code.retryable, bool)
    assert ErrorCode.NODE_UNAVAILABLE.retryable
    assert not ErrorCode.AUDIO_DECODE_FAILED.retryable


def test_error_message_puts_the_field_in_details() -> None:
    err = error_message(ErrorCode.INVALID_MESSAGE, "Missing field: audio", field="audio")
    assert json.loads(err.to_json()) == {
        "type": "error",
        "code": "INVALID_MESSAGE",
        "message": "Missing field: audio",
        "details": {"field": "audio"},
    }
