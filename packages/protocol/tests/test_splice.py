"""Large JSON messages: the audio literal is kept as received bytes, and the result is exactly
what a full parse gives, whatever the layout of the message."""

from __future__ import annotations

import base64
import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lingua_protocol import (
    AudioData,
    JobAssign,
    JobResult,
    Message,
    PipelineConfig,
    ProtocolError,
    TranslationResult,
    Utterance,
    parse_client_message,
    parse_node_message,
    parse_scheduler_message,
    parse_server_message,
)
from lingua_protocol import _parsing as parsing
from lingua_protocol import _splice as splice

AUDIO = bytes(range(256)) * 64  # 16 KiB: above the splice threshold once in base64
B64 = base64.b64encode(AUDIO).decode()


def full_parse(parse: Any, data: str | bytes, monkeypatch: pytest.MonkeyPatch) -> Message:
    """The same parser with the fast path switched off."""
    with monkeypatch.context() as m:
        m.setattr(parsing, "MIN_SPLICE_BYTES", 1 << 62)
        return parse(data)


def spliced(message: Message) -> bool:
    audio = message.audio_data()
    return audio is not None and isinstance(audio._literal, memoryview)


def utterance(**extra: Any) -> dict[str, Any]:
    return {"type": "utterance", "session_id": "s", "utterance_index": 3, "audio": B64, **extra}


@pytest.mark.parametrize(
    "dump",
    [
        lambda d: orjson.dumps(d),  # compact, audio where the dict has it
        lambda d: json.dumps(d).encode(),  # ": " and ", " separators
        lambda d: json.dumps(d, indent=2).encode(),  # newlines and indentation
        lambda d: json.dumps(dict(reversed(list(d.items())))).encode(),  # audio first
        lambda d: json.dumps(d),  # a str, as websockets gives text frames by default
    ],
)
def test_the_fast_path_gives_what_a_full_parse_gives(
    dump: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = dump(utterance(extra={"note": 'he said "audio": "x"', "nested": {"audio": "AAAA"}}))
    fast = parse_client_message(data)
    assert spliced(fast)
    assert fast == full_parse(parse_client_message, data, monkeypatch)
    assert fast.audio.to_bytes() == AUDIO
    assert len(fast.audio) == len(AUDIO)
    assert fast.audio.to_base64() == B64


def test_re_emitted_audio_is_the_received_literal_last_and_valid_json() -> None:
    message = parse_client_message(orjson.dumps(utterance(tgt_lang="zh")))
    job = JobAssign(
        job_id="j",
        session_id="s",
        utterance_index=3,
        src_lang="en",
        tgt_lang="zh",
        pipeline=PipelineConfig(),
        audio=message.audio,
    )
    out = job.to_json_bytes()
    assert out.endswith(b',"audio":"' + B64.encode() + b'"}')
    assert orjson.loads(out)["audio"] == B64 == json.loads(out)["audio"]
    again = parse_scheduler_message(out)
    assert spliced(again)
    assert again == job


@pytest.mark.parametrize(
    ("parse", "model", "field"),
    [
        (parse_node_message, JobResult, "tts_audio"),
        (parse_server_message, TranslationResult, "tts_audio"),
    ],
)
def test_tts_audio_takes_the_fast_path_too(parse: Any, model: type[Message], field: str) -> None:
    body = {"job_id": "j", "session_id": "s", "utterance_index": 1, "node_id": "n"}
    if model is JobResult:
        body["success"] = True
    message = model.model_validate({**body, field: AudioData.from_bytes(AUDIO)})
    parsed = parse(message.to_json_bytes())
    assert spliced(parsed)
    assert parsed == message


@pytest.mark.parametrize(
    "data",
    [
        # an escaped "/" is valid JSON for the same string: not safe to copy, so a full parse
        orjson.dumps(utterance()).replace(b"/", b"\\/"),
        # the key spelled with an escape
        orjson.dumps(utterance()).replace(b'"audio"', b'"\\u0061udio"'),
        # the audio key twice: the last one counts, as in a full parse
        orjson.dumps(utterance())[:-1] + b',"audio":"' + base64.b64encode(b"xyz") + b'"}',
    ],
)
@pytest.mark.parametrize("verify", [True, False], ids=["verified", "unverified"])
def test_unusual_layouts_fall_back_and_agree(
    data: bytes, verify: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    def parse(d: str | bytes) -> Message:
        return parse_client_message(d, verify_audio=verify)

    fast = parse(data)
    assert not spliced(fast)
    assert fast == full_parse(parse, data, monkeypatch)


def test_a_value_that_reads_audio_is_not_taken_for_the_key() -> None:
    data = orjson.dumps({"type": "utterance", "kind": "audio", "session_id": "s"})[:-1]
    data += b',"utterance_index":0,"audio":"' + B64.encode() + b'"}'
    message = parse_client_message(data)
    assert spliced(message)
    assert message.audio.to_bytes() == AUDIO


def test_a_nested_audio_key_before_the_real_one_is_not_taken() -> None:
    data = (
        orjson.dumps(
            {"type": "utterance", "extra": {"audio": B64}, "session_id": "s", "utterance_index": 0}
        )[:-1]
        + b',"audio":"'
        + base64.b64encode(b"real").decode().encode()
        + b'"}'
    )
    assert parse_client_message(data).audio.to_bytes() == b"real"


@pytest.mark.parametrize(
    "bad",
    [
        B64[:-1],  # length not a multiple of 4
        B64[:100] + "*" + B64[101:],  # outside the alphabet
        B64[:100] + "=" + B64[101:],  # padding in the middle
        B64[:100] + "\u00e9" + B64[102:],  # not ASCII
        B64[:100] + "\\n" + B64[102:],  # an escape
    ],
)
def test_invalid_audio_gets_the_same_error_as_before(bad: str) -> None:
    data = json.dumps(utterance(audio=bad)).encode()
    with pytest.raises(ProtocolError) as err:
        parse_client_message(data)
    assert err.value.code.value == "INVALID_MESSAGE"
    assert err.value.field == "audio"


def test_invalid_json_around_the_literal_is_still_invalid() -> None:
    data = orjson.dumps(utterance())[:-1]  # no closing brace
    with pytest.raises(ProtocolError):
        parse_client_message(data)
    assert splice.load_with_audio_literal(data, ("audio",)) is None


def test_a_literal_keeps_the_received_bytes_alive_and_unchanged() -> None:
    data = bytearray(orjson.dumps(utterance()))
    message = parse_client_message(bytes(data))
    data[:] = b"x" * len(data)  # the parser worked on its own bytes
    assert message.audio.to_bytes() == AUDIO


def test_audio_built_from_raw_bytes_is_encoded_once() -> None:
    audio = AudioData.from_bytes(AUDIO)
    first = audio.json_literal()
    assert audio.json_literal() is first
    assert first == b'"' + B64.encode() + b'"'
    assert (
        Utterance(session_id="s", utterance_index=0, audio=audio)
        .to_json_bytes()
        .endswith(b'"audio":' + first + b"}")
    )


keys = st.text(st.characters(codec="utf-8", exclude_characters='"\\'), max_size=8)
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(
    extra=st.dictionaries(keys, values, max_size=5),
    audio_at=st.integers(0, 6),
    indent=st.sampled_from([None, 1]),
    raw_audio=st.binary(min_size=3000, max_size=6000),
)
def test_any_layout_parses_as_a_full_parse_would(
    extra: dict[str, Any], audio_at: int, indent: int | None, raw_audio: bytes
) -> None:
    items = [(k, v) for k, v in extra.items() if k not in ("type", "session_id", "audio")]
    items += [("type", "utterance"), ("session_id", "s"), ("utterance_index", 1)]
    items.insert(min(audio_at, len(items)), ("audio", base64.b64encode(raw_audio).decode()))
    data = json.dumps(dict(items), indent=indent).encode()
    with pytest.MonkeyPatch.context() as m:
        try:
            fast: Message | ProtocolError = parse_client_message(data)
        except ProtocolError as exc:
            fast = exc
        m.setattr(parsing, "MIN_SPLICE_BYTES", 1 << 62)
        try:
            full: Message | ProtocolError = parse_client_message(data)
        except ProtocolError as exc:
            full = exc
    if isinstance(full, ProtocolError):
        assert isinstance(fast, ProtocolError)
        assert (fast.code, fast.field) == (
            full.code,
            full.field,
        )
    else:
        assert fast == full
        assert fast.model_dump() == full.model_dump()


def unverified(data: str | bytes) -> Message:
    return parse_client_message(data, verify_audio=False)


def test_unverified_audio_is_taken_as_it_is_when_it_can_be_copied_as_it_is() -> None:
    text = "@" * 8000  # printable ASCII: safe to forward, but not base64
    message = unverified(orjson.dumps(utterance(audio=text)))
    assert spliced(message)
    assert message.audio.to_base64() == text
    assert message.audio == AudioData(b64=text) != AudioData(b64="@" * 4)  # comparing never raises
    with pytest.raises(ValueError, match="base64"):
        message.audio.to_bytes()


@pytest.mark.parametrize("odd", ["\t", "\u00e9", "\\", '"', "\x7f"])
def test_unverified_audio_that_needs_escaping_is_parsed_and_emitted_in_full(odd: str) -> None:
    text = "A" * 4000 + odd + "A" * 4000
    data = json.dumps(utterance(audio=text)).encode()
    message = unverified(data)
    assert not spliced(message)
    assert message.audio.to_base64() == text
    again = unverified(message.to_json_bytes())  # valid JSON again, the same text
    assert again.audio.to_base64() == text


@settings(max_examples=100, deadline=None)
@given(audio=st.text(min_size=0, max_size=6000), pad=st.integers(0, 5000))
def test_unverified_any_audio_text_parses_as_a_full_parse_would(audio: str, pad: int) -> None:
    data = json.dumps(utterance(audio=audio, note="x" * pad), ensure_ascii=False).encode()
    with pytest.MonkeyPatch.context() as m:
        fast = unverified(data)
        m.setattr(parsing, "MIN_SPLICE_BYTES", 1 << 62)
        full = unverified(data)
    assert fast == full
    assert fast.audio.to_base64() == audio
    if audio_is_base64(audio):
        assert fast.audio.to_bytes() == base64.b64decode(audio)
    assert unverified(fast.to_json_bytes()).audio.to_base64() == audio


def audio_is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except ValueError:
        return False
    return True
