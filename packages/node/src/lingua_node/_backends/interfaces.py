"""The four small interfaces every inference engine implements, and the values they return.

The pipeline, the loader and the agent speak only these; a concrete engine (faster-whisper,
Piper, espeak-ng, a transformers or CTranslate2 translator, Silero) lives in its own module and
is found by name through `registry.py`. That is what keeps heavy libraries out of the modules
that orchestrate a job, and makes adding an engine one module plus one registry line.
Every method may block (inference): callers run them on worker threads, never on the loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from lingua_protocol import FloatAudio


@dataclass
class Word:
    """One recognised word with its start and end in seconds from the start of the audio."""

    word: str
    start: float
    end: float


@dataclass
class Transcript:
    text: str
    language: str
    language_probability: float
    words: list[Word] = field(default_factory=list)


@dataclass
class Speech:
    """Synthesised speech: PCM16 mono at the voice's own rate (the result states the rate)."""

    pcm16: bytes
    sample_rate: int


class VoiceActivity(Protocol):
    """Finds speech in 16 kHz mono audio; returns only the speech (empty when there is none)."""

    engine: str

    def speech(self, audio: FloatAudio) -> FloatAudio: ...


class Recognizer(Protocol):
    """Speech to text in `languages`; `multilingual` engines also translate speech to English."""

    engine: str
    model_id: str
    languages: list[str]
    multilingual: bool

    def transcribe(
        self, audio: FloatAudio, language: str | None, *, task: str = ...
    ) -> Transcript: ...


class Translator(Protocol):
    """Text to text for each (src, tgt) in `pairs`."""

    model_id: str
    pairs: list[tuple[str, str]]

    def translate(self, text: str, src: str, tgt: str) -> str: ...


class Voice(Protocol):
    """Text to speech for each language in `languages()`."""

    engine: str
    model_id: str

    def languages(self) -> list[str]: ...

    def speak(self, text: str, lang: str, *, rate: float = ...) -> Speech:
        """`rate`: pace factor (1.0 the voice's own pace, above 1 faster); see
        `speech_pace.py` for its bounds."""
        ...
