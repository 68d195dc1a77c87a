"""The published schema is current; the audio helpers convert losslessly enough."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from lingua_protocol._audio import (
    float32_to_pcm16,
    message_audio_duration_s,
    pcm16_to_float32,
    pcm16_wav_bytes,
    read_wav,
    resample,
    to_mono_16k,
    wav_bytes,
)
from lingua_protocol._schema import render_schema

SCHEMA = Path(__file__).resolve().parents[3] / "docs" / "protocol.schema.json"


def test_docs_schema_is_not_stale() -> None:
    assert SCHEMA.read_text(encoding="utf-8") == render_schema(), (
        "docs/protocol.schema.json is stale: run `hatch run protocol-schema`"
    )


def test_pcm16_round_trip_is_within_one_step() -> None:
    samples = np.linspace(-1, 1, 1001, dtype=np.float32)
    back = pcm16_to_float32(float32_to_pcm16(samples))
    assert np.max(np.abs(back - samples)) < 2 / 32768


def test_wav_round_trip_keeps_rate_and_samples() -> None:
    samples = (0.5 * np.sin(np.arange(8000) / 10)).astype(np.float32)
    data, rate = read_wav(wav_bytes(samples, 22050))
    assert rate == 22050
    assert data.shape == samples.shape
    assert np.allclose(data, samples, atol=1e-4)


def test_resample_changes_length_by_the_rate_ratio() -> None:
    one_second = np.zeros(22050, dtype=np.float32)
    assert abs(resample(one_second, 22050).size - 16000) <= 1
    stereo = np.zeros((48000, 2), dtype=np.float32)
    assert abs(to_mono_16k(stereo, 48000).size - 16000) <= 1


def test_message_audio_duration() -> None:
    pcm = b"\x00\x00" * 16000
    assert message_audio_duration_s(pcm, "pcm16", 16000) == 1.0
    assert message_audio_duration_s(pcm16_wav_bytes(pcm, 16000), "wav", 16000) == 1.0
    assert message_audio_duration_s(b"junk", "wav", 16000) is None
    assert message_audio_duration_s(b"junk", "opus", 16000) is None


def test_docs_protocol_md_is_not_stale() -> None:
    from lingua_protocol._docs_render import render_protocol_md

    assert SCHEMA.with_name("protocol.md").read_text(encoding="utf-8") == render_protocol_md()


def test_every_documented_example_parses_and_round_trips() -> None:
    import json

    from lingua_protocol import (
        parse_client_message,
        parse_node_message,
        parse_scheduler_message,
        parse_server_message,
    )
    from lingua_protocol._examples import CLIENT, NODE, SCHEDULER, SERVER

    for parse, examples in (
        (parse_client_message, CLIENT),
        (parse_server_message, SERVER),
        (parse_node_message, NODE),
        (parse_scheduler_message, SCHEDULER),
    ):
        for example in examples:
            assert json.loads(parse(json.dumps(example)).to_json()) == example
