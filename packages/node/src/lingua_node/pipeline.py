"""One job, start to end: decode -> VAD -> ASR -> translation -> TTS, with timings.

Pure orchestration over the backends it is given, so tests can hand it the real models or
small test doubles. `run()` returns a `JobResult` (success or failure); it never raises.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lingua_protocol import (
    AudioData,
    ErrorCode,
    JobAssign,
    JobError,
    JobResult,
    PipelineConfig,
    ProtocolError,
    ResultExtra,
    ServiceTimings,
)
from lingua_protocol.audio import FloatAudio

from .audio_decode import decode_audio
from .backends.interfaces import Recognizer, Transcript, Translator, VoiceActivity
from .backends.tts import TTSRouter

log = logging.getLogger("lingua.node.pipeline")

SPEECH_TO_ENGLISH = "en"
CHARACTER_LANGUAGES = {"zh", "ja", "yue", "ko"}  # rate counted in characters, not words


@dataclass
class Backends:
    vad: VoiceActivity
    asr: Recognizer
    tts: TTSRouter
    translators: list[Translator] = field(default_factory=list)

    def translator_for(self, src: str, tgt: str) -> Translator | None:
        return next((t for t in self.translators if (src, tgt) in t.pairs), None)

    def speech_translation_targets(self) -> list[str]:
        return [SPEECH_TO_ENGLISH] if self.asr.multilingual else []


class Failure(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def speech_rate(transcript: Transcript, lang: str) -> float | None:
    """Words (or characters, for languages written without spaces) per second of speech."""
    words = transcript.words
    if not words:
        return None
    span = float(words[-1].end) - float(words[0].start)
    if span <= 0:
        return None
    if lang in CHARACTER_LANGUAGES:
        units = sum(len(w.word.strip()) for w in words)
    else:
        units = sum(1 for w in words if w.word.strip())
    return round(float(units) / span, 2)


class Pipeline:
    def __init__(
        self, backends: Backends, node_id: str, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.b = backends
        self.node_id = node_id
        self.clock = clock

    def run(self, job: JobAssign) -> JobResult:
        started = self.clock()
        timings: dict[str, float] = {}
        try:
            return self._run(job, started, timings)
        except Failure as exc:
            return self._failure(job, exc.code, str(exc), started, timings)
        except ProtocolError as exc:
            return self._failure(job, exc.code, exc.message, started, timings)
        except Exception as exc:  # a backend bug must still end in an answer for this job
            log.exception("job %s failed in a backend", job.job_id)
            return self._failure(
                job,
                ErrorCode.INFERENCE_BACKEND_ERROR,
                f"{type(exc).__name__}: {exc}",
                started,
                timings,
            )

    def _timed(self, timings: dict[str, float], stage: str, started: float) -> None:
        timings[stage] = round((self.clock() - started) * 1000, 2)

    def _run(self, job: JobAssign, started: float, timings: dict[str, float]) -> JobResult:
        pipe = job.pipeline or PipelineConfig()
        try:
            raw = job.audio.to_bytes()
        except ValueError as exc:  # the scheduler relays audio without checking its base64
            raise Failure(ErrorCode.AUDIO_DECODE_FAILED, f"cannot decode audio: {exc}") from None
        audio = decode_audio(raw, job.audio_format, job.sample_rate)
        t = self.clock()
        speech = self.b.vad.speech(audio)
        self._timed(timings, "vad", t)
        if speech.size == 0:
            return self._empty(job, started, timings)

        src = None if job.src_lang == "auto" else job.src_lang
        tgt = job.tgt_lang
        if src is not None and src not in self.b.asr.languages:
            raise Failure(ErrorCode.MODEL_NOT_AVAILABLE, f"no ASR for {src}")
        if pipe.use_nmt and src is not None and not self._can_translate(src, tgt):
            raise Failure(ErrorCode.MODEL_NOT_AVAILABLE, f"no translation path {src}->{tgt}")
        transcript: Transcript | None = None
        lang = src
        text_asr = ""
        t = self.clock()
        if pipe.use_asr:
            transcript = self.b.asr.transcribe(speech, src)
            lang = src or transcript.language
            text_asr = transcript.text
        self._timed(timings, "asr", t)
        if pipe.use_asr and not text_asr:
            return self._empty(job, started, timings, detected=lang)

        t = self.clock()
        text_out = self._translate(speech, text_asr, lang, tgt, pipe)
        self._timed(timings, "nmt", t)

        tts_audio: bytes | None = None
        tts_rate: int | None = None
        t = self.clock()
        if pipe.use_tts and text_out:
            speak_lang = tgt if pipe.use_nmt else (lang or tgt)
            if self.b.tts.voice_for(speak_lang) is None:
                raise Failure(ErrorCode.MODEL_NOT_AVAILABLE, f"no TTS voice for {speak_lang}")
            said, _voice = self.b.tts.speak(text_out, speak_lang)
            tts_audio, tts_rate = said.pcm16, said.sample_rate
        self._timed(timings, "tts", t)

        extra = ResultExtra(detected_lang=lang) if job.src_lang == "auto" else None
        if job.features and job.features.speech_rate_detection and transcript is not None:
            rate = speech_rate(transcript, lang or "")
            extra = (extra or ResultExtra()).model_copy(update={"speech_rate": rate})
        total = round((self.clock() - started) * 1000, 2)
        result = JobResult(
            job_id=job.job_id,
            attempt_id=job.attempt_id,
            node_id=self.node_id,
            session_id=job.session_id,
            utterance_index=job.utterance_index,
            success=True,
            text_asr=text_asr,
            text_translated=text_out,
            processing_time_ms=total,
            service_timings=ServiceTimings(
                vad_ms=timings.get("vad"),
                asr_ms=timings.get("asr"),
                nmt_ms=timings.get("nmt"),
                tts_ms=timings.get("tts"),
                total_ms=total,
            ),
        )
        updates: dict[str, object] = {}
        if tts_audio is not None:
            updates.update(
                tts_audio=AudioData.from_bytes(tts_audio),
                tts_format="pcm16",
                tts_sample_rate=tts_rate,
            )
        if extra is not None:
            updates["extra"] = extra
        return result.model_copy(update=updates) if updates else result

    def _can_translate(self, src: str, tgt: str) -> bool:
        return (
            src == tgt
            or self.b.translator_for(src, tgt) is not None
            or (tgt == SPEECH_TO_ENGLISH and self.b.asr.multilingual)
        )

    def _translate(
        self, speech: FloatAudio, text: str, lang: str | None, tgt: str, pipe: PipelineConfig
    ) -> str:
        if not pipe.use_nmt:
            return text
        if lang == tgt:
            return text
        if lang is not None and text:
            translator = self.b.translator_for(lang, tgt)
            if translator is not None:
                return translator.translate(text, lang, tgt)
        if tgt == SPEECH_TO_ENGLISH and self.b.asr.multilingual:
            return self.b.asr.transcribe(speech, lang, task="translate").text
        raise Failure(ErrorCode.MODEL_NOT_AVAILABLE, f"no translation path {lang or 'auto'}->{tgt}")

    def _empty(
        self, job: JobAssign, started: float, timings: dict[str, float], detected: str | None = None
    ) -> JobResult:
        total = round((self.clock() - started) * 1000, 2)
        return JobResult(
            job_id=job.job_id,
            attempt_id=job.attempt_id,
            node_id=self.node_id,
            session_id=job.session_id,
            utterance_index=job.utterance_index,
            success=True,
            text_asr="",
            text_translated="",
            extra=ResultExtra(reason="ASR_EMPTY", detected_lang=detected),
            processing_time_ms=total,
            service_timings=ServiceTimings(
                vad_ms=timings.get("vad"), asr_ms=timings.get("asr"), total_ms=total
            ),
        )

    def _failure(
        self,
        job: JobAssign,
        code: ErrorCode,
        message: str,
        started: float,
        timings: dict[str, float],
    ) -> JobResult:
        total = round((self.clock() - started) * 1000, 2)
        return JobResult(
            job_id=job.job_id,
            attempt_id=job.attempt_id,
            node_id=self.node_id,
            session_id=job.session_id,
            utterance_index=job.utterance_index,
            success=False,
            error=JobError(code=code.value, message=message),
            processing_time_ms=total,
            service_timings=ServiceTimings(
                total_ms=total, **{f"{k}_ms": v for k, v in timings.items()}
            ),
        )
