"""Every string and list a peer sends is capped where the protocol declares it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from lingua_protocol import ErrorCode, ProtocolError, parse_client_message, parse_node_message
from lingua_protocol._base import (
    MAX_ID_CHARS,
    MAX_LANG_CODE_CHARS,
    MAX_LANGUAGE_PAIRS,
    MAX_LANGUAGES,
    MAX_RESULT_TEXT_CHARS,
)


def _register(**kw: Any) -> str:
    return json.dumps({"type": "node_register", "node_id": "n", **kw})


def test_a_megabyte_language_code_is_refused_before_its_pattern_runs() -> None:
    code = "en" + "-abcd" * 200_000
    with pytest.raises(ProtocolError) as err:
        parse_client_message(
            json.dumps({"type": "session_init", "src_lang": code, "tgt_lang": "en"})
        )
    assert err.value.code == ErrorCode.INVALID_MESSAGE
    longest = ("en" + "-abcdefgh" * 4)[:MAX_LANG_CODE_CHARS]
    ok = parse_client_message(
        json.dumps({"type": "session_init", "src_lang": longest, "tgt_lang": "en"})
    )
    assert ok.src_lang == longest  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "body",
    [
        {
            "language_capabilities": {
                "supported_language_pairs": [{"src": "en", "tgt": "de"}] * (MAX_LANGUAGE_PAIRS + 1)
            }
        },
        {"language_capabilities": {"asr_languages": ["en"] * (MAX_LANGUAGES + 1)}},
        {"node_id": "n" * (MAX_ID_CHARS + 1)},
        {
            "installed_models": [
                {"model_id": "m", "kind": "asr", "languages": ["en"] * (MAX_LANGUAGES + 1)}
            ]
        },
        {"node_credential": "short"},
    ],
)
def test_register_over_a_cap_is_invalid(body: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as err:
        parse_node_message(_register(**body))
    assert err.value.code == ErrorCode.INVALID_MESSAGE


def test_register_at_the_caps_parses() -> None:
    pairs = [{"src": "en", "tgt": "de"}] * MAX_LANGUAGE_PAIRS
    message = parse_node_message(
        _register(
            language_capabilities={"supported_language_pairs": pairs}, node_credential="x" * 43
        )
    )
    assert message.type == "node_register"


def test_a_node_result_text_is_capped() -> None:
    body = {"type": "job_result", "job_id": "j", "success": True}
    parse_node_message(json.dumps({**body, "text_translated": "a" * MAX_RESULT_TEXT_CHARS}))
    with pytest.raises(ProtocolError):
        parse_node_message(
            json.dumps({**body, "text_translated": "a" * (MAX_RESULT_TEXT_CHARS + 1)})
        )
