"""One streaming job from its first audio to its `job_result`.

`StreamJob` ties the recogniser (`recognizer.py`) to the job: it decodes the job's audio as it
arrives, turns each pass into an `asr_partial` (with the committed prefix translated when the
node has a text model for the pair), and at the end hands the final transcript to the
pipeline, which translates it and synthesises speech as for a whole utterance (the same code,
so a streamed utterance's result has the same fields as a whole one's).

`update` and `finish` block (inference) and run on a worker thread, one at a time per job
(`workers.StreamRunner` sees to it); `feed` is cheap (a chunk's base64 and PCM) and runs on
the event loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lingua_protocol import (
    AsrPartial,
    AudioData,
    ErrorCode,
    JobAssign,
    JobError,
    JobResult,
    PipelineConfig,
    ProtocolError,
)

from .._asr_choice import pick_recognizer
from .._audio_decode import decode_audio
from .._pipeline import Failure, Heard, Pipeline
from .pause import PauseDetector
from .prefix_translation import PrefixTranslator
from .recognizer import AudioTooLong, StreamConfig, StreamRecognizer

log = logging.getLogger("lingua.node.streaming")

NO_SPACE_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "my", "km"})


class StreamFailed(Exception):
    """The stream cannot go on; `code` is the job's error code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class StreamJob:
    job: JobAssign
    recognizer: StreamRecognizer
    pipeline: Pipeline
    node_id: str
    interval_s: float
    translator: PrefixTranslator | None = None
    clock: Callable[[], float] = time.perf_counter
    revision: int = 0
    _sent: tuple[str, str] = ("", "")
    pauses: PauseDetector = field(default_factory=PauseDetector)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.pauses = PauseDetector(self.recognizer.config.pause_ms)

    @classmethod
    def open(
        cls, job: JobAssign, pipeline: Pipeline, node_id: str, config: StreamConfig
    ) -> StreamJob:
        """A stream for `job`, its first audio fed. Raises `StreamFailed` when the node
        cannot serve the job's languages or its audio cannot be decoded."""
        try:
            pipeline.check_languages(job)
            src = None if job.src_lang == "auto" else job.src_lang
            asr = pick_recognizer(pipeline.b.asr, src, "transcribe")
        except Failure as exc:
            raise StreamFailed(exc.code, str(exc)) from None
        except LookupError as exc:
            raise StreamFailed(ErrorCode.MODEL_NOT_AVAILABLE, str(exc)) from None
        stream = cls(
            job=job,
            recognizer=StreamRecognizer(asr, src, pipeline.b.vad, config),
            pipeline=pipeline,
            node_id=node_id,
            interval_s=config.interval_s(job.partial_update_interval_ms),
            translator=prefix_translator(job, pipeline),
        )
        stream.feed(job.audio, job.audio_format, job.sample_rate)
        return stream

    def feed(self, audio: AudioData, audio_format: str, sample_rate: int) -> bool:
        """More of the utterance; True when the speaker just paused (`pause.py`: a pass now
        would hear the end of what was said). Raises `StreamFailed` (AUDIO_DECODE_FAILED)
        for audio that cannot be decoded or passes the node's limit."""
        try:
            raw = audio.to_bytes()
        except ValueError as exc:
            raise StreamFailed(
                ErrorCode.AUDIO_DECODE_FAILED, f"cannot decode audio: {exc}"
            ) from None
        if not raw:
            return False
        try:
            samples = decode_audio(raw, audio_format, sample_rate)
            self.recognizer.add(samples)
        except ProtocolError as exc:
            raise StreamFailed(ErrorCode.AUDIO_DECODE_FAILED, exc.message) from None
        except AudioTooLong as exc:
            raise StreamFailed(ErrorCode.AUDIO_DECODE_FAILED, str(exc)) from None
        return self.pauses.feed(samples)

    def update(self) -> AsrPartial | None:
        """One recognition pass; the partial to send, or None when nothing changed. Raises
        `StreamFailed` (INFERENCE_BACKEND_ERROR) when the model fails."""
        try:
            heard = self.recognizer.update()
            if heard is None:
                return None
            with self._lock:  # two passes of a stream may end at once (around a pause)
                if (heard.text, heard.stable_text) == self._sent:
                    return None
                translated = self._translate(heard.stable_text)
                self._sent = (heard.text, heard.stable_text)
                self.revision += 1
                revision = self.revision
        except StreamFailed:
            raise
        except Exception as exc:  # a model's failure ends this stream with its cause
            log.exception("job=%s streaming pass failed", self.job.job_id)
            raise StreamFailed(
                ErrorCode.INFERENCE_BACKEND_ERROR, f"{type(exc).__name__}: {exc}"
            ) from exc
        return AsrPartial(
            session_id=self.job.session_id,
            utterance_index=self.job.utterance_index,
            text=heard.text,
            stable_text=heard.stable_text,
            revision=revision,
            audio_ms=heard.audio_ms,
            text_translated=translated,
            tgt_lang=self.job.tgt_lang if translated is not None else None,
            job_id=self.job.job_id,
            attempt_id=self.job.attempt_id,
            node_id=self.node_id,
        )

    def finish(self) -> JobResult:
        """The job's result (never raises): the final pass, then translation and speech."""
        started = self.clock()
        try:
            transcript = self.recognizer.finish()
        except Exception as exc:  # a model's failure still ends in an answer for this job
            log.exception("job=%s final streaming pass failed", self.job.job_id)
            return self.failure(ErrorCode.INFERENCE_BACKEND_ERROR, f"{type(exc).__name__}: {exc}")
        asr_ms = round((self.clock() - started) * 1000, 2)
        heard = Heard(self.recognizer.audio(), transcript, asr_ms)
        return self.pipeline.run(self.job, heard=heard)

    def failure(self, code: ErrorCode | str, message: str) -> JobResult:
        return self.job.answer(
            self.node_id,
            success=False,
            error=JobError(
                code=str(code.value if isinstance(code, ErrorCode) else code), message=message
            ),
        )

    def _translate(self, stable_text: str) -> str | None:
        if self.translator is None or not stable_text:
            return None
        return self.translator.translated(stable_text)


def prefix_translator(job: JobAssign, pipeline: Pipeline) -> PrefixTranslator | None:
    """A text model for the job's pair, when the job translates and the node has one (speech
    translation by Whisper needs the whole audio: it runs once, at the end)."""
    pipe = job.pipeline or PipelineConfig()
    src, tgt = job.src_lang, job.tgt_lang
    if not pipe.use_nmt or src == "auto" or src == tgt:
        return None
    model = pipeline.b.translator_for(src, tgt)
    if model is None:
        return None
    joiner = "" if tgt in NO_SPACE_LANGUAGES else " "
    return PrefixTranslator(lambda text: model.translate(text, src, tgt), joiner)
