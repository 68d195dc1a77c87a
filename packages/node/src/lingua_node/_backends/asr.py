"""faster-whisper ASR and speech translation into English.

One `WhisperModel` per node, shared by all worker threads (CTranslate2 models are thread-safe
and run `num_workers` requests in parallel). Chinese output is converted to simplified
characters, since Whisper writes either script.
"""

from __future__ import annotations

import logging
import math
import threading
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
from faster_whisper import WhisperModel
from lingua_protocol import FloatAudio

from .._script_check import foreign_letters
from .asr_batched import BatchingWhisper
from .asr_batching import BatchPolicy
from .interfaces import Transcript, Word

log = logging.getLogger("lingua.node.asr")


def to_simplified(text: str) -> str:
    from opencc import OpenCC

    return str(OpenCC("t2s").convert(text))


WINDOW_FRAMES = 3000  # Whisper's 30 s window, in 10 ms mel frames
CONTEXT_MARGIN_FRAMES = 200
MIN_CONTEXT_FRAMES = 1000
DEFAULT_BEAM_SIZE = 5
"""Beam 5, a 2 s margin and a 10 s minimum window: chosen from measurements of the node's
pipeline on the committed English speech (docs/node.md has the table). The old beam 1 with
a 5 s window lost 6 of 71 words; beam 5 with a window of at least 10 s loses 1 (1.4%), as
faster-whisper's own defaults do, at under half their latency; an 8 s window still split
"tonight" into "to night"."""


def context_frames(samples: int) -> int | None:
    """Encoder frames for a short utterance: its length plus 2 s, at least 10 s, rounded up
    to a second. None when the audio needs Whisper's full window."""
    frames = samples // 160
    if frames + CONTEXT_MARGIN_FRAMES >= WINDOW_FRAMES:
        return None
    keep = max(MIN_CONTEXT_FRAMES, math.ceil((frames + CONTEXT_MARGIN_FRAMES) / 100) * 100)
    return min(WINDOW_FRAMES, keep)


class ShortContextWhisper(WhisperModel):
    """Encodes only the part of Whisper's zero-padded 30 s window that holds the utterance.

    faster-whisper always pads to 30 s, and on a CPU the encoder pass over that padding is most
    of the cost of a short utterance (1.6 s of 2.2 s for 5 s of speech with Whisper base on 2
    cores). CTranslate2 accepts a shorter input, like whisper.cpp's `audio_ctx`. Too short a
    window costs accuracy (Whisper was trained on 30 s windows): with 2 s of margin and at
    least 10 s the committed test speech comes out as with the full window.
    """

    _local = threading.local()

    def encode(self, features: np.ndarray) -> Any:
        keep = getattr(self._local, "frames", None)
        if keep is not None and features.shape[-1] == WINDOW_FRAMES:
            features = np.ascontiguousarray(features[..., :keep])
        return super().encode(features)


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
        beam_size: int = DEFAULT_BEAM_SIZE,
        short_context: bool = True,
        batching: BatchPolicy | None = None,
    ) -> None:
        """`batching`: put concurrent utterances into one CTranslate2 call under that policy
        (`asr_batching.py`); None: each job calls the model on its own."""
        self.model_id = model_id
        self.device = device
        self.beam_size = beam_size
        self.short_context = short_context
        self.model = ShortContextWhisper(
            str(model_dir),
            device=device,
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            num_workers=workers,
            local_files_only=True,
        )
        self.batching: BatchingWhisper | None = None
        if batching is not None:
            self.batching = BatchingWhisper(self.model.model, batching)
            self.model.model = self.batching
            log.info(
                "asr model %s on %s: concurrent utterances batched, up to %d per model call, "
                "%d batch(es) at once, waiting at most %.0f ms for others",
                model_id,
                device,
                batching.max_batch,
                batching.max_running,
                batching.window_s * 1000,
            )
        self.multilingual = bool(self.model.model.is_multilingual)
        self._non_latin: list[int] | None = None
        self.languages = sorted(self.model.supported_languages) if self.multilingual else ["en"]

    def transcribe(
        self, audio: FloatAudio, language: str | None, *, task: str = "transcribe"
    ) -> Transcript:
        local = ShortContextWhisper._local
        local.frames = context_frames(audio.size) if self.short_context else None
        try:
            with self._transcription():
                return self._transcribe(audio, language, task)
        finally:
            local.frames = None

    def _transcription(self) -> AbstractContextManager[None]:
        """While it runs, batches its calls could join wait for it (within the window)."""
        return self.batching.batcher.caller() if self.batching is not None else nullcontext()

    def transcribe_stream(
        self,
        audio: FloatAudio,
        language: str | None,
        *,
        prompt: str | None = None,
        beam_size: int | None = None,
        temperature: float | None = None,
    ) -> Transcript:
        """One pass of streaming recognition (`lingua_node._streaming`) over the buffer: the
        short context as in `transcribe`; `prompt` is the text committed before the buffer
        (Whisper's `initial_prompt`), so a pass over a trimmed buffer continues its sentence;
        `beam_size` replaces the node's beam for this pass; `temperature` 0 turns off
        faster-whisper's fallback (up to five more decodes at higher temperatures when a
        decode looks unlikely, as a pass over the first fraction of a word always does)."""
        local = ShortContextWhisper._local
        local.frames = context_frames(audio.size) if self.short_context else None
        try:
            return self._decode(
                audio,
                language,
                "transcribe",
                temperature=temperature,
                prompt=prompt,
                beam_size=beam_size,
            )
        finally:
            local.frames = None

    def _transcribe(self, audio: FloatAudio, language: str | None, task: str) -> Transcript:
        transcript = self._decode(audio, language, task)
        if task == "translate" and foreign_letters(transcript.text):
            # Whisper left part of the line in the source script: decode again at temperature
            # 0 (no sampling fallback), with every token outside the Latin script suppressed.
            transcript = self._decode(
                audio, language, task, temperature=0.0, suppress=self.non_latin_token_ids()
            )
        return transcript

    def non_latin_token_ids(self) -> list[int]:
        """Ids of the text tokens that write letters outside the Latin script (or partial
        UTF-8 bytes, which only non-Latin characters need); worked out once per model."""
        if self._non_latin is None:
            tokenizer = self.model.hf_tokenizer
            eot = tokenizer.token_to_id("<|endoftext|>")
            self._non_latin = [i for i in range(eot) if foreign_letters(tokenizer.decode([i]))]
        return self._non_latin

    def _decode(
        self,
        audio: FloatAudio,
        language: str | None,
        task: str,
        temperature: float | None = None,
        suppress: list[int] | None = None,
        prompt: str | None = None,
        beam_size: int | None = None,
    ) -> Transcript:
        options: dict[str, Any] = {}
        if prompt:
            options["initial_prompt"] = prompt
        if temperature is not None:
            options["temperature"] = temperature
        if suppress:
            options["suppress_tokens"] = [-1, *suppress]
        segments, info = self.model.transcribe(
            audio,
            language=language,
            task=task,
            beam_size=beam_size or self.beam_size,
            word_timestamps=task == "transcribe",
            condition_on_previous_text=False,
            vad_filter=False,  # the node's own VAD already cut the silence
            without_timestamps=task != "transcribe",
            **options,
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
