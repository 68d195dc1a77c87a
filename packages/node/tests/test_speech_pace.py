"""Speech synthesis that follows the speaker's pace (`features.speech_rate_control`): the
factor from the measured rate, its bounds, the pipeline passing it to the voice and reporting
it, and the real voices (Piper, espeak-ng) speaking faster or slower with it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from lingua_node._backends.interfaces import Speech, Transcript, Word
from lingua_node._backends.tts import TTSRouter
from lingua_node._pipeline import Backends, Pipeline
from lingua_node._speech_pace import MAX_FACTOR, MIN_FACTOR, pace_factor
from lingua_node.testing.backend_doubles import PassThroughVAD
from lingua_protocol import AudioData, FeatureFlags, FloatAudio, JobAssign, PipelineConfig


def test_the_pace_factor_follows_the_rate_within_bounds() -> None:
    assert pace_factor(2.5, "en") == 1.0
    assert pace_factor(3.0, "en") == 1.2
    assert pace_factor(2.0, "de") == 0.8
    assert pace_factor(9.0, "en") == MAX_FACTOR == 1.4  # a rush is not copied
    assert pace_factor(0.5, "en") == MIN_FACTOR == 0.7  # nor a crawl
    assert pace_factor(5.4, "zh") == 1.2  # characters per second for Chinese
    assert pace_factor(None, "en") == pace_factor(0.0, "en") == 1.0


@dataclass
class FastSpeaker:
    """A test-double recogniser: eight words in two seconds (4 words/s, 1.6x typical)."""

    model_id: str = "fast-asr"
    engine: str = "test"
    languages: list[str] = field(default_factory=lambda: ["en"])
    multilingual: bool = False

    def transcribe(
        self, audio: FloatAudio, language: str | None, *, task: str = "transcribe"
    ) -> Transcript:
        words = [Word(f" w{i}", i * 0.25, i * 0.25 + 0.2) for i in range(8)]
        words[-1] = Word(" w7", 1.8, 2.0)
        return Transcript("w0 w1 w2 w3 w4 w5 w6 w7", "en", 1.0, words)


@dataclass
class RecordingVoice:
    model_id: str = "rec-voice"
    engine: str = "test"
    rates: list[float | None] = field(default_factory=list)

    def languages(self) -> list[str]:
        return ["en"]

    def speak(self, text: str, lang: str, *, rate: float | None = None) -> Speech:
        self.rates.append(rate)
        return Speech(b"\x00\x00" * 10, 16000)


def run(features: FeatureFlags | None) -> tuple[RecordingVoice, JobAssign, Pipeline]:
    voice = RecordingVoice()
    backends = Backends(vad=PassThroughVAD(), asr=FastSpeaker(), tts=TTSRouter([voice]))
    job = JobAssign(
        job_id="j",
        session_id="s",
        utterance_index=0,
        src_lang="en",
        tgt_lang="en",
        audio=AudioData.from_bytes(b"\x10\x00" * 16000),
        pipeline=PipelineConfig(use_nmt=False, use_tts=True),
        features=features,
    )
    return voice, job, Pipeline(backends, "node-t")


def test_tts_follows_the_speaker_when_the_session_asks() -> None:
    voice, job, pipeline = run(FeatureFlags(speech_rate_control=True))
    result = pipeline.run(job)
    assert result.success
    assert voice.rates == [1.4]
    assert result.extra is not None
    assert result.extra.tts_rate == 1.4
    assert result.extra.speech_rate is None  # detection was not asked for


def test_tts_keeps_the_voice_pace_when_not_asked() -> None:
    voice, job, pipeline = run(FeatureFlags(speech_rate_detection=True))
    result = pipeline.run(job)
    assert voice.rates == [None]
    assert result.extra is not None
    assert result.extra.tts_rate is None
    assert result.extra.speech_rate == 4.0


@pytest.mark.parametrize("lang", ["en", "de"])  # Piper's English voice, espeak-ng's German
def test_real_voices_speak_faster_and_slower(backends, lang: str) -> None:  # type: ignore[no-untyped-def]
    voice = backends.tts.voice_for(lang)
    assert voice is not None
    text = "The train leaves the central station at half past seven tonight."
    lengths = {rate: len(voice.speak(text, lang, rate=rate).pcm16) for rate in (0.7, 1.0, 1.4)}
    assert lengths[1.4] < 0.85 * lengths[1.0] < 0.85 * lengths[0.7], lengths
