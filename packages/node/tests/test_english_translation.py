"""Speech translation into English comes out in English: a line with letters of another
script is decoded again with stricter settings, and failed with a clear error if it still is
not English, never passed on as a success."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from lingua_node._backends.asr import WhisperASR
from lingua_node._backends.interfaces import Transcript
from lingua_node._backends.tts import TTSRouter
from lingua_node._pipeline import Backends, Pipeline
from lingua_node._script_check import foreign_letters
from lingua_node.testing.backend_doubles import PassThroughVAD
from lingua_protocol import AudioData, FloatAudio, JobAssign, PipelineConfig

MIXED = "I want to meet Ding明天的酒店 tomorrow."


def test_foreign_letters_are_found_and_latin_ones_are_not() -> None:
    assert foreign_letters(MIXED) == "明天的酒店"
    assert foreign_letters("Café, naïve résumé: 3 × 4 = 12 €!") == ""
    assert foreign_letters("Привет world") == "Привет"
    assert foreign_letters("broken \ufffd byte") == "\ufffd"


@dataclass
class Segment:
    text: str
    words: list[Any] | None = None


@dataclass
class Info:
    language: str = "zh"
    language_probability: float = 0.99


@dataclass
class ScriptedWhisperModel:
    """A test double of faster-whisper's WhisperModel: answers each call with the next text."""

    texts: list[str]
    calls: list[dict[str, Any]] = field(default_factory=list)

    def transcribe(self, audio: FloatAudio, **kw: Any) -> tuple[list[Segment], Info]:
        self.calls.append(kw)
        return [Segment(self.texts[len(self.calls) - 1])], Info()


def scripted_asr(*texts: str) -> tuple[WhisperASR, ScriptedWhisperModel]:
    asr = WhisperASR.__new__(WhisperASR)  # the real class, over a scripted model
    model = ScriptedWhisperModel(list(texts))
    asr.model = model  # type: ignore[assignment]
    asr.model_id, asr.beam_size, asr.short_context = "scripted", 5, True
    asr.multilingual, asr.languages, asr.device = True, ["zh", "en"], "cpu"
    asr._non_latin = [100, 200]
    asr.batching = None
    return asr, model


def test_a_mixed_translation_is_decoded_again_with_other_scripts_suppressed() -> None:
    asr, model = scripted_asr(MIXED, "I want to meet Ding at the hotel tomorrow.")
    out = asr.transcribe(np.zeros(16000, np.float32), "zh", task="translate")
    assert out.text == "I want to meet Ding at the hotel tomorrow."
    assert len(model.calls) == 2
    assert "suppress_tokens" not in model.calls[0]
    assert model.calls[1]["temperature"] == 0.0
    assert model.calls[1]["suppress_tokens"] == [-1, 100, 200]


def test_an_english_translation_is_decoded_once() -> None:
    asr, model = scripted_asr("I want to meet Ding at the hotel tomorrow.")
    asr.transcribe(np.zeros(16000, np.float32), "zh", task="translate")
    assert len(model.calls) == 1


@dataclass
class StubbornTranslator:
    """A test-double recogniser whose speech translation keeps Chinese characters."""

    model_id: str = "stubborn"
    engine: str = "test"
    languages: list[str] = field(default_factory=lambda: ["zh", "en"])
    multilingual: bool = True

    def transcribe(
        self, audio: FloatAudio, language: str | None, *, task: str = "transcribe"
    ) -> Transcript:
        return Transcript(MIXED if task == "translate" else "我想明天见丁", "zh", 1.0)


def test_a_translation_that_stays_mixed_fails_instead_of_succeeding() -> None:
    backends = Backends(vad=PassThroughVAD(), asr=StubbornTranslator(), tts=TTSRouter([]))
    job = JobAssign(
        job_id="j",
        session_id="s",
        utterance_index=0,
        src_lang="zh",
        tgt_lang="en",
        audio=AudioData.from_bytes(b"\x10\x00" * 16000),
        pipeline=PipelineConfig(use_tts=False),
    )
    result = Pipeline(backends, "node-t").run(job)
    assert not result.success
    assert result.error is not None
    assert result.error.code == "INFERENCE_BACKEND_ERROR"
    assert "another script" in result.error.message
    assert "明" in result.error.message


def test_the_real_tokenizer_suppresses_chinese_and_keeps_english(backends) -> None:  # type: ignore[no-untyped-def]
    whisper = backends.asr.choose("en")
    tokenizer = whisper.model.hf_tokenizer
    suppressed = set(whisper.non_latin_token_ids())
    eot = tokenizer.token_to_id("<|endoftext|>")

    def text_tokens(text: str) -> list[int]:  # encode() adds special tokens around the text
        return [i for i in tokenizer.encode(text).ids if i < eot]

    assert all(i in suppressed for i in text_tokens("明天的酒店"))
    assert not any(i in suppressed for i in text_tokens(" the hotel, café"))


def test_the_stricter_second_decode_runs_on_the_real_model(backends) -> None:  # type: ignore[no-untyped-def]
    """faster-whisper takes the suppressed-token list (tens of thousands of ids) and still
    translates: the retry path works on the real model, not only on the double."""
    from pathlib import Path

    from lingua_node._audio_decode import decode_audio

    speech = Path(__file__).resolve().parents[3] / "tests" / "data" / "speech" / "es_table.wav"
    whisper = backends.asr.choose("es", "translate")
    audio = decode_audio(speech.read_bytes(), "wav", 16000)
    out = whisper._decode(
        audio, "es", "translate", temperature=0.0, suppress=whisper.non_latin_token_ids()
    )
    assert "good morning" in out.text.lower()
    assert foreign_letters(out.text) == ""
