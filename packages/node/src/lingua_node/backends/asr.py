"""faster-whisper ASR and speech translation into English.

One `WhisperModel` per node, shared by all worker threads (CTranslate2 models are thread-safe
and run `num_workers` requests in parallel). Chinese output is converted to simplified
characters, since Whisper writes either script.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from faster_whisper import WhisperModel
from faster_whisper.tokenizer import _LANGUAGE_CODES
from lingua_protocol.audio import FloatAudio


@dataclass
class Word:
    word: str
    start: float
    end: float


@dataclass
class Transcript:
    text: str
    language: str
    language_probability: float
    words: list[Word] = field(default_factory=list)


def to_simplified(text: str) -> str:
    from opencc import OpenCC

    return str(OpenCC("t2s").convert(text))


class WhisperASR:
    engine = "faster-whisper"

    def __init__(
        self,
        model_dir: Path,
        *,
        model_id: str = "whisper-base",
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int = 0,
        workers: int = 1,
        beam_size: int = 1,
    ) -> None:
        self.model_id = model_id
        self.device = device
        self.beam_size = beam_size
        self.model = WhisperModel(
            str(model_dir),
            device=device,
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            num_workers=workers,
            local_files_only=True,
        )
        self.multilingual = bool(self.model.model.is_multilingual)
        self.languages = sorted(_LANGUAGE_CODES) if self.multilingual else ["en"]

    def transcribe(
        self, audio: FloatAudio, language: str | None, *, task: str = "transcribe"
    ) -> Transcript:
        segments, info = self.model.transcribe(
            audio,
            language=language,
            task=task,
            beam_size=self.beam_size,
            word_timestamps=task == "transcribe",
            condition_on_previous_text=False,
            vad_filter=False,  # the node's own VAD already cut the silence
            without_timestamps=task != "transcribe",
        )
        words: list[Word] = []
        parts: list[str] = []
        for seg in segments:
            parts.append(seg.text)
            words.extend(Word(w.word, w.start, w.end) for w in seg.words or [])
        text = "".join(parts).strip()
        lang = info.language
        if lang == "zh" and task == "transcribe":
            text = to_simplified(text)
            words = [Word(to_simplified(w.word), w.start, w.end) for w in words]
        return Transcript(text, lang, float(info.language_probability), words)
