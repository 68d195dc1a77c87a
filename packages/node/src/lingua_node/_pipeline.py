"""One job, start to end: decode -> VAD -> ASR -> translation -> TTS, with timings.

Pure orchestration over the backends it is given, so tests can hand it the real models or
small test doubles. `run()` returns a `JobResult` (success or failure); it never raises.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from lingua_protocol import (
    AudioData,
    ErrorCode,
    FeatureFlags,
    FloatAudio,
    JobAssign,
    JobError,
    JobResult,
    PipelineConfig,
    ProtocolError,
    ResultExtra,
    ServiceTimings,
)

from ._asr_choice import ASRRouter, asr_models, pick_recognizer
from ._audio_decode import decode_audio
from ._backends.interfaces import (
    Recognizer,
    Speech,
    Transcript,
    Translator,
    Voice,
    VoiceActivity,
)
from ._backends.tts import TTSRouter
from ._health import BackendHealth, Withdrawal
from ._jobs import StageGate
from ._script_check import foreign_letters
from ._speech_pace import CHARACTER_LANGUAGES, pace_factor

log = logging.getLogger("lingua.node.pipeline")

SPEECH_TO_ENGLISH = "en"


@dataclass
class Backends:
    """The loaded models a job runs on. Fields are replaced whole, never mutated, when the
    store changes or a model is withdrawn, so a running job keeps what it started with.

    `withheld`: models loaded but not served, (kind, model id) -> why (failed the self-test
    on every device, or withdrawn after failing at run time), reported in the register as
    `enabled: false`. `health`: the run-time failure counts (`health.py`)."""

    vad: VoiceActivity
    asr: Recognizer
    tts: TTSRouter
    translators: list[Translator] = field(default_factory=list)
    withheld: dict[tuple[str, str], str] = field(default_factory=dict)
    health: BackendHealth = field(default_factory=BackendHealth)
    max_jobs: int = 1
    """The `max_concurrent_jobs` to advertise (`concurrency.py`); `sizing` says how it came."""
    sizing: str = ""
    max_streams: int = 0
    """The `max_concurrent_streams` to advertise (`concurrency.stream_capacity`); 0: none."""
    stream_interval_ms: int = 1000
    """The default interval between a stream's passes (`partial_update_interval_ms`)."""
    replacing: threading.Lock = field(default_factory=threading.Lock)
    """Held while the models are replaced (a withdrawal on a worker thread, a store reload on
    another), so neither puts back what the other just took out."""

    def translator_for(self, src: str, tgt: str) -> Translator | None:
        return next((t for t in self.translators if (src, tgt) in t.pairs), None)

    def speech_translation_targets(self) -> list[str]:
        return [SPEECH_TO_ENGLISH] if self.asr.multilingual else []

    def withdraw(self, w: Withdrawal) -> None:
        """Stop serving a model that keeps failing: rebuild what holds it without it."""
        with self.replacing:
            self._withdraw(w)

    def _withdraw(self, w: Withdrawal) -> None:
        self.withheld[(w.kind, w.model_id)] = (
            f"withdrawn after {w.failures} failures in a row: {w.cause}"
        )
        if w.kind == "asr":
            router = self.asr if isinstance(self.asr, ASRRouter) else None
            keep = [o for o in asr_models(self.asr) if o.recognizer.model_id != w.model_id]
            self.asr = ASRRouter(keep, pinned=router.pinned if router else None)
        elif w.kind == "nmt":
            self.translators = [t for t in self.translators if t.model_id != w.model_id]
        elif w.kind == "tts":
            self.tts = TTSRouter([v for v in self.tts.voices if v.model_id != w.model_id])


@dataclass(frozen=True, slots=True)
class Heard:
    """Speech a streaming job already recognised while it arrived (`lingua_node._streaming`):
    the final pass hands it to `Pipeline.run`, which goes on from translation."""

    speech: FloatAudio
    """The utterance's whole audio (16 kHz mono), for Whisper's speech translation."""
    transcript: Transcript
    asr_ms: float
    """The final recognition pass, for `service_timings.asr_ms`."""


class Failure(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class BackendFailed(Exception):
    """A model raised while serving a job: counted against it in `BackendHealth`."""

    def __init__(self, kind: str, model_id: str, cause: Exception) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.kind = kind
        self.model_id = model_id


T = TypeVar("T")


def speech_rate(transcript: Transcript, lang: str | None) -> float | None:
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

    def run(
        self, job: JobAssign, gate: StageGate | None = None, heard: Heard | None = None
    ) -> JobResult:
        """The job's result; never raises. `gate` is asked before each stage whether the job
        was cancelled or is past its `timeout_ms` (JOB_TIMEOUT). `heard`: the speech was
        already recognised (a streaming job's final transcript): decoding, VAD and ASR are
        skipped and the job goes on with translation and TTS."""
        started = self.clock()
        timings: dict[str, float] = {}
        try:
            return self._run(job, started, timings, gate or StageGate(), heard)
        except Failure as exc:
            return self._failure(job, exc.code, str(exc), started, timings)
        except ProtocolError as exc:
            return self._failure(job, exc.code, exc.message, started, timings)
        except BackendFailed as exc:
            log.warning("job=%s %s model %s failed: %s", job.job_id, exc.kind, exc.model_id, exc)
            withdrawal = self.b.health.failed(exc.kind, exc.model_id, str(exc))
            if withdrawal is not None:
                log.error(
                    "%s model %s failed %d jobs in a row (%s): no longer advertised",
                    withdrawal.kind,
                    withdrawal.model_id,
                    withdrawal.failures,
                    withdrawal.cause,
                )
                self.b.withdraw(withdrawal)
            message = f"{exc.kind} model {exc.model_id} failed: {exc}"
            return self._failure(job, ErrorCode.INFERENCE_BACKEND_ERROR, message, started, timings)
        except Exception as exc:  # a bug must still end in an answer for this job
            log.exception("job %s failed", job.job_id)
            return self._failure(
                job,
                ErrorCode.INFERENCE_BACKEND_ERROR,
                f"{type(exc).__name__}: {exc}",
                started,
                timings,
            )

    def _timed(self, timings: dict[str, float], stage: str, started: float) -> None:
        timings[stage] = round((self.clock() - started) * 1000, 2)

    def _call(self, kind: str, model_id: str, work: Callable[[], T]) -> T:
        """Run one backend call, counting its success or failure against the model."""
        try:
            out = work()
        except (Failure, ProtocolError):
            raise
        except Exception as exc:  # any exception from a model counts against that model
            raise BackendFailed(kind, model_id, exc) from exc
        self.b.health.succeeded(kind, model_id)
        return out

    @staticmethod
    def _boundary(job: JobAssign, gate: StageGate, stage: str) -> None:
        reason = gate.stop_reason()
        if reason == "timeout":
            raise Failure(
                ErrorCode.JOB_TIMEOUT,
                f"job {job.job_id} passed its timeout of {job.timeout_ms} ms; "
                f"stopped before {stage}",
            )
        if reason == "cancelled":
            raise Failure(ErrorCode.NODE_UNAVAILABLE, f"job cancelled; stopped before {stage}")

    def _recognizer(self, language: str | None, task: str = "transcribe") -> Recognizer:
        try:
            return pick_recognizer(self.b.asr, language, task)
        except LookupError as exc:
            raise Failure(ErrorCode.MODEL_NOT_AVAILABLE, str(exc)) from None

    def _run(
        self,
        job: JobAssign,
        started: float,
        timings: dict[str, float],
        gate: StageGate,
        heard: Heard | None = None,
    ) -> JobResult:
        pipe = job.pipeline or PipelineConfig()
        if heard is not None:
            timings["asr"] = heard.asr_ms
            return self._after_asr(
                job, heard.speech, heard.transcript, None, started, timings, gate
            )
        self._boundary(job, gate, "decoding")
        try:
            raw = job.audio.to_bytes()
        except ValueError as exc:  # the scheduler relays audio without checking its base64
            raise Failure(ErrorCode.AUDIO_DECODE_FAILED, f"cannot decode audio: {exc}") from None
        audio = decode_audio(raw, job.audio_format, job.sample_rate)
        self._boundary(job, gate, "vad")
        t = self.clock()
        speech = self.b.vad.speech(audio)
        self._timed(timings, "vad", t)
        if speech.size == 0:
            return self._empty(job, started, timings)

        src = None if job.src_lang == "auto" else job.src_lang
        self.check_languages(job)
        transcript: Transcript | None = None
        heard_by: str | None = None
        self._boundary(job, gate, "asr")
        t = self.clock()
        if pipe.use_asr:
            recognizer = self._recognizer(src)
            heard_by = recognizer.model_id
            transcript = self._call(
                "asr", recognizer.model_id, lambda: recognizer.transcribe(speech, src)
            )
        self._timed(timings, "asr", t)
        return self._after_asr(job, speech, transcript, heard_by, started, timings, gate)

    def check_languages(self, job: JobAssign) -> None:
        """Raises `Failure` (MODEL_NOT_AVAILABLE) when this node cannot hear the job's
        language or translate it into the target; a streaming job asks before its audio."""
        pipe = job.pipeline or PipelineConfig()
        src = None if job.src_lang == "auto" else job.src_lang
        if src is not None and src not in self.b.asr.languages:
            raise Failure(ErrorCode.MODEL_NOT_AVAILABLE, f"no ASR for {src}")
        if pipe.use_nmt and src is not None and not self._can_translate(src, job.tgt_lang):
            raise Failure(
                ErrorCode.MODEL_NOT_AVAILABLE, f"no translation path {src}->{job.tgt_lang}"
            )

    def _after_asr(
        self,
        job: JobAssign,
        speech: FloatAudio,
        transcript: Transcript | None,
        heard_by: str | None,
        started: float,
        timings: dict[str, float],
        gate: StageGate,
    ) -> JobResult:
        """Translation, TTS and the result, once the speech was heard (`transcript`; None
        when the job skips ASR)."""
        pipe = job.pipeline or PipelineConfig()
        src = None if job.src_lang == "auto" else job.src_lang
        tgt = job.tgt_lang
        lang = src or (transcript.language if transcript is not None else None)
        text_asr = transcript.text if transcript is not None else ""
        if pipe.use_asr and not text_asr:
            return self._empty(job, started, timings, detected=lang)

        self._boundary(job, gate, "translation")
        t = self.clock()
        text_out = self._translate(speech, text_asr, lang, tgt, pipe)
        self._timed(timings, "nmt", t)

        tts_audio: bytes | None = None
        tts_rate: int | None = None
        features = job.features or FeatureFlags()
        pace: float | None = None  # the pace factor, when the session asked to follow the speaker
        if pipe.use_tts and text_out:
            self._boundary(job, gate, "tts")
        t = self.clock()
        if pipe.use_tts and text_out:
            speak_lang = tgt if pipe.use_nmt else (lang or tgt)
            voice = self.b.tts.voice_for(speak_lang)
            if voice is None:
                raise Failure(ErrorCode.MODEL_NOT_AVAILABLE, f"no TTS voice for {speak_lang}")
            if features.speech_rate_control:
                pace = pace_factor(speech_rate(transcript, lang) if transcript else None, lang)
            said = self._speak(voice, text_out, speak_lang, pace)
            tts_audio, tts_rate = said.pcm16, said.sample_rate
        self._timed(timings, "tts", t)

        extra = ResultExtra(detected_lang=lang) if job.src_lang == "auto" else None
        if features.speech_rate_detection and transcript is not None:
            rate = speech_rate(transcript, lang or "")
            extra = (extra or ResultExtra()).model_copy(update={"speech_rate": rate})
        if pace is not None:
            extra = (extra or ResultExtra()).model_copy(update={"tts_rate": pace})
        if heard_by is not None and len(asr_models(self.b.asr)) > 1:
            extra = (extra or ResultExtra()).model_copy(update={"asr_model": heard_by})
        total = round((self.clock() - started) * 1000, 2)
        result = job.answer(
            self.node_id,
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

    def _speak(self, voice: Voice, text: str, lang: str, pace: float | None) -> Speech:
        if pace is None:
            return self._call("tts", voice.model_id, lambda: voice.speak(text, lang))
        return self._call("tts", voice.model_id, lambda: voice.speak(text, lang, rate=pace))

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
                return self._call(
                    "nmt", translator.model_id, lambda: translator.translate(text, lang, tgt)
                )
        if tgt == SPEECH_TO_ENGLISH and self.b.asr.multilingual:
            recognizer = self._recognizer(lang, "translate")
            english = self._call(
                "asr",
                recognizer.model_id,
                lambda: recognizer.transcribe(speech, lang, task="translate").text,
            )
            stray = foreign_letters(english)
            if stray:  # never a half-translated line as a success
                raise Failure(
                    ErrorCode.INFERENCE_BACKEND_ERROR,
                    f"speech translation into English kept letters of another script "
                    f"({stray[:20]!r}) after a stricter second decode",
                )
            return english
        raise Failure(ErrorCode.MODEL_NOT_AVAILABLE, f"no translation path {lang or 'auto'}->{tgt}")

    def _empty(
        self, job: JobAssign, started: float, timings: dict[str, float], detected: str | None = None
    ) -> JobResult:
        total = round((self.clock() - started) * 1000, 2)
        return job.answer(
            self.node_id,
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
        return job.answer(
            self.node_id,
            success=False,
            error=JobError(code=code.value, message=message),
            processing_time_ms=total,
            service_timings=ServiceTimings(
                total_ms=total, **{f"{k}_ms": v for k, v in timings.items()}
            ),
        )
