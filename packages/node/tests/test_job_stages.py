"""`timeout_ms` and `job_cancel` honoured at stage boundaries: a job past its timeout stops
before its next stage with JOB_TIMEOUT, a cancelled one before its next stage at all. The
pipeline over test-double models, with a fake clock; then the agent against a scripted
test-double scheduler over a real WebSocket."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from lingua_node._backends.interfaces import Speech, Transcript
from lingua_node._backends.tts import TTSRouter
from lingua_node._jobs import StageGate
from lingua_node._pipeline import Backends, Pipeline
from lingua_node.testing.agent_harness import running
from lingua_node.testing.backend_doubles import PassThroughVAD
from lingua_node.testing.scripted_scheduler import ScriptedScheduler
from lingua_protocol import AudioData, FloatAudio, JobAssign, JobCancel, PipelineConfig


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class StepRecognizer:
    """A test-double recogniser that moves the fake clock on by `takes_s` and, when `hold` is
    given, waits for it (so a test can act while the job is inside ASR)."""

    clock: Clock
    takes_s: float = 0.0
    hold: threading.Event | None = None
    entered: threading.Event = field(default_factory=threading.Event)
    model_id: str = "step-asr"
    engine: str = "test-step"
    languages: list[str] = field(default_factory=lambda: ["en", "de"])
    multilingual: bool = False

    def transcribe(
        self, audio: FloatAudio, language: str | None, *, task: str = "transcribe"
    ) -> Transcript:
        self.entered.set()
        if self.hold is not None:
            self.hold.wait(10)
        self.clock.now += self.takes_s
        return Transcript("hello there", language or "en", 1.0)


@dataclass
class CountingTranslator:
    model_id: str = "count-nmt"
    pairs: list[tuple[str, str]] = field(default_factory=lambda: [("en", "de")])
    calls: int = 0

    def translate(self, text: str, src: str, tgt: str) -> str:
        self.calls += 1
        return "hallo"


@dataclass
class CountingVoice:
    model_id: str = "count-voice"
    engine: str = "test"
    calls: int = 0

    def languages(self) -> list[str]:
        return ["de"]

    def speak(self, text: str, lang: str) -> Speech:
        self.calls += 1
        return Speech(b"\x00\x00" * 100, 16000)


def setup(
    takes_s: float = 0.0, hold: threading.Event | None = None
) -> tuple[Pipeline, Clock, StepRecognizer, CountingTranslator, CountingVoice]:
    clock = Clock()
    asr = StepRecognizer(clock, takes_s, hold)
    nmt = CountingTranslator()
    voice = CountingVoice()
    backends = Backends(vad=PassThroughVAD(), asr=asr, tts=TTSRouter([voice]), translators=[nmt])
    return Pipeline(backends, "node-t", clock=clock), clock, asr, nmt, voice


def job(n: int = 1, timeout_ms: int | None = None) -> JobAssign:
    return JobAssign(
        job_id=f"job-{n}",
        attempt_id="a1",
        session_id="s1",
        utterance_index=n,
        src_lang="en",
        tgt_lang="de",
        audio=AudioData.from_bytes(b"\x10\x00" * 16000),
        pipeline=PipelineConfig(use_asr=True, use_nmt=True, use_tts=True),
        timeout_ms=timeout_ms,
    )


def test_a_job_within_its_timeout_runs_every_stage() -> None:
    pipeline, clock, _asr, nmt, voice = setup(takes_s=0.5)
    result = pipeline.run(job(timeout_ms=1000), StageGate(deadline=1.0, clock=clock))
    assert result.success
    assert result.text_translated == "hallo"
    assert (nmt.calls, voice.calls) == (1, 1)


def test_a_job_past_its_timeout_stops_before_the_next_stage_with_job_timeout() -> None:
    pipeline, clock, _asr, nmt, voice = setup(takes_s=2.0)
    result = pipeline.run(job(timeout_ms=1000), StageGate(deadline=1.0, clock=clock))
    assert not result.success
    assert result.error is not None
    assert result.error.code == "JOB_TIMEOUT"
    assert "1000 ms" in result.error.message
    assert "before translation" in result.error.message
    assert (nmt.calls, voice.calls) == (0, 0)


def test_a_cancelled_job_does_not_start_its_next_stage() -> None:
    pipeline, _clock, asr, nmt, voice = setup()
    cancelled = threading.Event()
    asr_was_entered = asr.entered
    gate = StageGate(cancelled=lambda: cancelled.is_set() and asr_was_entered.is_set())
    cancelled.set()
    result = pipeline.run(job(), gate)
    assert not result.success
    assert result.error is not None
    assert "before translation" in result.error.message
    assert (nmt.calls, voice.calls) == (0, 0)


async def test_job_cancel_during_asr_keeps_translation_and_speech_from_running() -> None:
    hold = threading.Event()
    pipeline, _clock, asr, nmt, voice = setup(hold=hold)
    async with running(pipeline.run, max_jobs=1) as (sched, agent):
        await sched.send(job(1))
        await sched.wait_for(lambda: len(sched.acks) == 1)
        await _wait_thread_event(sched, asr.entered)
        await sched.send(JobCancel(job_id="job-1", reason="client left"))
        await sched.wait_for(lambda: agent.book.cancelled)
        hold.set()
        await sched.wait_for(lambda: agent.book.discarded == 1)
    assert (nmt.calls, voice.calls) == (0, 0)
    assert sched.results == []  # a cancelled attempt's result is never sent


async def test_a_job_past_its_timeout_ms_reports_job_timeout_to_the_scheduler() -> None:
    hold = threading.Event()
    pipeline, clock, asr, nmt, voice = setup(hold=hold)
    async with running(pipeline.run, max_jobs=1, clock=clock) as (sched, _agent):
        await sched.send(job(1, timeout_ms=1000))
        await _wait_thread_event(sched, asr.entered)
        clock.now += 1.5  # the job is still inside ASR when its 1000 ms pass
        hold.set()
        await sched.wait_for(lambda: sched.results)
    error = sched.results[0].error
    assert error is not None
    assert error.code == "JOB_TIMEOUT"
    assert (nmt.calls, voice.calls) == (0, 0)


async def _wait_thread_event(sched: ScriptedScheduler, event: threading.Event) -> None:
    """Wait for an event set on a worker thread, without blocking the loop."""
    import asyncio

    assert await asyncio.to_thread(event.wait, 10), "the worker never set the event"


def test_a_job_that_waited_past_its_timeout_for_a_worker_does_not_run() -> None:
    from lingua_node._agent import NodeAgent
    from lingua_protocol import NodeRegister

    ran: list[str] = []

    def run(j: JobAssign, _gate: StageGate) -> object:
        ran.append(j.job_id)
        raise AssertionError("must not run")

    agent = NodeAgent(
        lambda: NodeRegister(node_id="n"), run, url="ws://unused", node_id="n", max_jobs=1
    )  # type: ignore[arg-type]
    late = job(7, timeout_ms=1000)
    assert agent.session.book.admit(("job-7", "a1")) is None
    result = agent._guarded(late, StageGate(deadline=10.0, clock=lambda: 11.0))
    assert not result.success
    assert result.error is not None
    assert result.error.code == "JOB_TIMEOUT"
    assert ran == []
