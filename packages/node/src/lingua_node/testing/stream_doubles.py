"""Test doubles for streaming recognition: "speech" whose words can be read back exactly.

`tone_speech` writes each word of a vocabulary as a run of one constant sample value (word i
of the vocabulary is the value (i + 1) / 256), with silence between words;
`ScriptedStreamRecognizer` reads such audio back into words with their times, as Whisper
would, except that a word still being spoken when the audio ends (its run shorter than
`word_s`) comes out as a wrong guess. So a test can check what LocalAgreement commits,
where the buffer was cut, what prompt each pass got, and how many passes ran, without a
model. `LevelVAD` finds speech where samples are not zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from lingua_protocol import FloatAudio

from .._backends.interfaces import Transcript, Word

RATE = 16000
STEP = 1 / 256


def tone_speech(
    vocabulary: list[str], words: list[str], *, word_s: float = 0.4, gap_s: float = 0.1
) -> FloatAudio:
    """`words` (each in `vocabulary`) as tone runs, each followed by `gap_s` of silence."""
    parts: list[FloatAudio] = []
    for word in words:
        level = (vocabulary.index(word) + 1) * STEP
        parts.append(np.full(int(word_s * RATE), level, dtype=np.float32))
        parts.append(np.zeros(int(gap_s * RATE), dtype=np.float32))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


@dataclass
class PassCall:
    samples: int
    prompt: str | None
    beam_size: int | None


@dataclass
class ScriptedStreamRecognizer:
    """A `Recognizer` with a streaming pass over tone speech (see the module docstring)."""

    vocabulary: list[str]
    word_s: float = 0.4
    engine: str = "scripted-double"
    model_id: str = "scripted-double"
    languages: list[str] = field(default_factory=lambda: ["en"])
    multilingual: bool = False
    calls: list[PassCall] = field(default_factory=list)
    fail: bool = False
    """Raise on every pass (a model that broke)."""

    def transcribe(
        self, audio: FloatAudio, language: str | None, *, task: str = "transcribe"
    ) -> Transcript:
        return self.transcribe_stream(audio, language)

    def transcribe_stream(
        self,
        audio: FloatAudio,
        language: str | None,
        *,
        prompt: str | None = None,
        beam_size: int | None = None,
        temperature: float | None = None,
    ) -> Transcript:
        self.calls.append(PassCall(int(audio.size), prompt, beam_size))
        if self.fail:
            raise RuntimeError("scripted model failure")
        words = self.read(audio)
        return Transcript("".join(w.word for w in words).strip(), "en", 1.0, words)

    def read(self, audio: FloatAudio) -> list[Word]:
        words: list[Word] = []
        levels = np.rint(audio / STEP).astype(np.int64)
        edges = np.flatnonzero(np.diff(levels)) + 1
        starts = np.concatenate([[0], edges])
        ends = np.concatenate([edges, [levels.size]])
        for start, end in zip(starts, ends, strict=True):
            index = int(levels[start]) - 1
            if index < 0 or index >= len(self.vocabulary):
                continue
            text = self.vocabulary[index]
            if end == levels.size and (end - start) < int(self.word_s * RATE) - 1:
                text = f"{text}-guess{end - start}"  # cut off: a different guess every time
            words.append(Word(f" {text}", float(start) / RATE, float(end) / RATE))
        return words


class LevelVAD:
    """Speech is wherever a sample is not zero."""

    engine = "level-double"

    def speech(self, audio: FloatAudio) -> FloatAudio:
        return audio[audio != 0]

    def speech_span(self, audio: FloatAudio) -> tuple[int, int] | None:
        voiced = np.flatnonzero(audio)
        return (int(voiced[0]), int(voiced[-1]) + 1) if voiced.size else None
