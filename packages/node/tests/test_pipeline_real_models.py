"""The pipeline on real models (Silero, Whisper base int8, Piper, espeak-ng) and the
committed Piper speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lingua_node._pipeline import Pipeline
from lingua_node.testing.wer import wer
from lingua_protocol import (
    AudioData,
    FeatureFlags,
    JobAssign,
    PipelineConfig,
    float32_to_pcm16,
    parse_scheduler_message,
)


def job(
    audio: bytes, fmt: str = "wav", src: str = "en", tgt: str = "en", **kw: object
) -> JobAssign:
    return JobAssign(
        job_id="job-1",
        attempt_id="a1",
        session_id="s1",
        utterance_index=0,
        src_lang=src,
        tgt_lang=tgt,
        audio=AudioData.from_bytes(audio),
        audio_format=fmt,
        **kw,
    )


@pytest.fixture(scope="module")
def pipeline(backends) -> Pipeline:  # type: ignore[no-untyped-def]
    return Pipeline(backends, "node-under-test")


def test_transcripts_of_the_committed_speech_have_at_most_2_percent_wer(
    pipeline: Pipeline, speech_items: list[dict[str, str]]
) -> None:
    """The decoding defaults (beam 5, a short window of at least 10 s) lose no accuracy
    against faster-whisper's own (1 word of 71); beam 1 with a 5 s window lost 6."""
    errors, total = 0.0, 0
    for item in speech_items:
        audio = Path(item["path"]).read_bytes()
        result = pipeline.run(job(audio, pipeline=PipelineConfig(use_tts=False)))
        assert result.success, result.error
        n = len(item["text"].split())
        errors += wer(item["text"], result.text_asr or "") * n
        total += n
    assert errors / total <= 0.02, f"WER {errors / total:.3f}"


def test_a_full_job_returns_text_speech_and_timings(
    pipeline: Pipeline, speech_items: list[dict[str, str]]
) -> None:
    item = speech_items[0]
    result = pipeline.run(
        job(Path(item["path"]).read_bytes(), features=FeatureFlags(speech_rate_detection=True))
    )
    assert result.success
    assert wer(item["text"], result.text_translated or "") <= 0.2
    assert result.tts_format == "pcm16"
    assert result.tts_sample_rate == 22050
    assert result.tts_audio is not None
    assert len(result.tts_audio) > 22050
    t = result.service_timings
    assert t is not None
    assert t.asr_ms
    assert t.tts_ms
    assert t.total_ms
    assert t.total_ms >= t.asr_ms + t.tts_ms
    assert result.extra is not None
    assert 1.0 < (result.extra.speech_rate or 0) < 8.0


def test_auto_detects_english(pipeline: Pipeline, speech_items: list[dict[str, str]]) -> None:
    result = pipeline.run(
        job(
            Path(speech_items[1]["path"]).read_bytes(),
            src="auto",
            pipeline=PipelineConfig(use_tts=False),
        )
    )
    assert result.success
    assert result.extra is not None
    assert result.extra.detected_lang == "en"


def test_espeak_speaks_a_language_without_a_piper_voice(
    pipeline: Pipeline, speech_items: list[dict[str, str]]
) -> None:
    said, voice = pipeline.b.tts.speak("guten Morgen", "de")
    assert voice.engine == "espeak-ng"
    assert said.sample_rate == 22050
    assert len(said.pcm16) > 4000


def test_silence_is_asr_empty_and_never_words(pipeline: Pipeline) -> None:
    rng = np.random.default_rng(1)
    hiss = (rng.standard_normal(16000 * 3) * 0.002).astype(np.float32)
    result = pipeline.run(job(float32_to_pcm16(hiss), fmt="pcm16"))
    assert result.success
    assert result.text_asr == ""
    assert result.text_translated == ""
    assert result.extra is not None
    assert result.extra.reason == "ASR_EMPTY"
    assert result.tts_audio is None


def test_corrupt_audio_fails_with_audio_decode_failed(pipeline: Pipeline) -> None:
    result = pipeline.run(job(b"RIFF....WAVEfmt garbage", fmt="wav"))
    assert not result.success
    assert result.error is not None
    assert result.error.code == "AUDIO_DECODE_FAILED"


def test_audio_that_is_not_base64_fails_with_audio_decode_failed(pipeline: Pipeline) -> None:
    # The scheduler forwards a client's base64 without checking it; the node's strict decode
    # is what catches it, and the answer names the utterance instead of leaving it unanswered.
    raw = '{"type": "job_assign", "job_id": "j", "session_id": "s", "utterance_index": 0,'
    raw += ' "src_lang": "en", "tgt_lang": "en", "audio": "@@not base64@@"}'
    bad = parse_scheduler_message(raw, verify_audio=False)
    assert isinstance(bad, JobAssign)
    result = pipeline.run(bad)
    assert not result.success
    assert result.error is not None
    assert result.error.code == "AUDIO_DECODE_FAILED"
    assert "base64" in result.error.message


def test_a_pair_without_a_model_is_refused_before_asr(
    pipeline: Pipeline, speech_items: list[dict[str, str]]
) -> None:
    result = pipeline.run(job(Path(speech_items[0]["path"]).read_bytes(), tgt="fr"))
    assert not result.success
    assert result.error is not None
    assert result.error.code == "MODEL_NOT_AVAILABLE"
    assert result.service_timings is not None
    assert result.service_timings.asr_ms is None
