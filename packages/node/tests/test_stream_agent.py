"""Streaming jobs through the real `NodeAgent` and `StreamJob`/`Pipeline` against a scripted
test-double scheduler over a real WebSocket; the recogniser and VAD are the tone-speech test
doubles (`lingua_node.testing.stream_doubles`), so no model loads and no test sleeps."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
from lingua_node import _capabilities as capabilities
from lingua_node._backends.interfaces import Transcript
from lingua_node._backends.tts import TTSRouter
from lingua_node._jobs import StageGate
from lingua_node._pipeline import Backends, Pipeline
from lingua_node._status import render
from lingua_node._streaming.recognizer import StreamConfig
from lingua_node._streaming.stream_job import StreamJob
from lingua_node.testing.agent_harness import job, running
from lingua_node.testing.stream_doubles import LevelVAD, ScriptedStreamRecognizer, tone_speech
from lingua_protocol import (
    AsrPartial,
    AudioData,
    FloatAudio,
    JobAssign,
    JobAudio,
    JobCancel,
    JobResult,
    NodeControl,
    PipelineConfig,
)
from rich.console import Console

VOCAB = ["one", "two", "three", "four.", "five", "six", "seven", "eight.", "nine", "ten."]
CHUNK_S = 0.25


class GatedRecognizer(ScriptedStreamRecognizer):
    """Blocks every pass over audio that starts with "nine" until `gate` is set."""

    def __init__(self) -> None:
        super().__init__(VOCAB)
        self.gate = threading.Event()
        self.blocked = threading.Event()

    def transcribe_stream(
        self,
        audio: FloatAudio,
        language: str | None,
        *,
        prompt: str | None = None,
        beam_size: int | None = None,
        temperature: float | None = None,
    ) -> Transcript:
        words = self.read(audio)
        if words and words[0].word.strip().startswith("nine"):
            self.blocked.set()
            self.gate.wait(30)
        return super().transcribe_stream(audio, language, prompt=prompt, beam_size=beam_size)


def pcm(audio: FloatAudio) -> bytes:
    return (audio * 32768).astype("<i2").tobytes()


def chunks(audio: FloatAudio) -> list[bytes]:
    step = int(CHUNK_S * 16000)
    return [pcm(audio[i : i + step]) for i in range(0, audio.size, step)]


def assign(n: int, first: bytes) -> JobAssign:
    return job(
        n,
        first,
        stream=True,
        next_seq=0,
        partial_update_interval_ms=200,
        pipeline=PipelineConfig(use_tts=False),
    )


def audio(n: int, seq: int, data: bytes, final: bool = False) -> JobAudio:
    return JobAudio(
        job_id=f"job-{n}",
        attempt_id="a1",
        seq=seq,
        payload=AudioData.from_bytes(data),
        is_final=final,
    )


def streaming_node(asr: ScriptedStreamRecognizer, max_streams: int = 2):  # type: ignore[no-untyped-def]
    backends = Backends(vad=LevelVAD(), asr=asr, tts=TTSRouter([]), max_streams=max_streams)
    pipeline = Pipeline(backends, "node-t")
    config = StreamConfig(interval_ms=200, first_update_ms=200)

    def never(job: JobAssign, gate: StageGate) -> JobResult:
        raise AssertionError("a streaming job must not run as a whole utterance")

    return running(
        never,
        max_jobs=2,
        open_stream=lambda job: StreamJob.open(job, pipeline, "node-t", config),
        max_streams=max_streams,
    )


def partials(sched: object, n: int) -> list[AsrPartial]:
    return [
        m
        for m in getattr(sched, "other", [])
        if isinstance(m, AsrPartial) and m.utterance_index == n
    ]


async def test_partials_arrive_while_audio_streams_in_then_exactly_one_result() -> None:
    words = ["one", "two", "three", "four.", "five", "six"]
    parts = chunks(tone_speech(VOCAB, words))
    async with streaming_node(ScriptedStreamRecognizer(VOCAB)) as (sched, agent):
        await sched.send(assign(1, parts[0]))
        half = len(parts) // 2
        for seq, data in enumerate(parts[1:half]):
            await sched.send(audio(1, seq, data))
        await sched.wait_for(lambda: partials(sched, 1))
        assert not sched.results, "no result before the final chunk"
        for seq, data in enumerate(parts[half:], start=half - 1):
            await sched.send(audio(1, seq, data, final=seq == len(parts) - 2))
        await sched.wait_for(lambda: sched.results)
        [result] = sched.results
        assert result.success
        assert result.text_asr == "one two three four. five six"
        assert result.utterance_index == 1
        seen = partials(sched, 1)
        revisions = [p.revision for p in seen]
        assert revisions == sorted(set(revisions))
        assert all(result.text_asr.startswith(p.stable_text) for p in seen)
        assert [a.job_id for a in sched.acks] == ["job-1"]
        console = Console(record=True, width=120)
        console.print(render(agent, sched.url))
        assert "done 1" in console.export_text().split("streams", 1)[1]


async def test_a_slow_stream_does_not_hold_back_another_and_the_loop_keeps_heartbeating() -> None:
    asr = GatedRecognizer()
    slow = chunks(tone_speech(VOCAB, ["nine", "ten."]))
    fast = chunks(tone_speech(VOCAB, ["one", "two", "three"]))
    async with streaming_node(asr) as (sched, _agent):
        await sched.send(assign(1, b"".join(slow)))
        await sched.wait_for(asr.blocked.is_set)
        beats = len(sched.heartbeats)
        await sched.send(assign(2, b"".join(fast)))
        await sched.send(audio(2, 0, b"", final=True))
        await sched.wait_for(lambda: any(r.job_id == "job-2" for r in sched.results))
        await sched.wait_for(lambda: len(sched.heartbeats) > beats)
        assert not any(r.job_id == "job-1" for r in sched.results)
        asr.gate.set()
        await sched.send(audio(1, 0, b"", final=True))
        await sched.wait_for(lambda: any(r.job_id == "job-1" for r in sched.results))
        texts = {r.job_id: r.text_asr for r in sched.results}
        assert texts == {"job-2": "one two three", "job-1": "nine ten."}


async def test_a_third_stream_is_refused_and_a_cancelled_one_sends_nothing_more() -> None:
    parts = chunks(tone_speech(VOCAB, ["one", "two", "three", "five"]))
    async with streaming_node(ScriptedStreamRecognizer(VOCAB)) as (sched, agent):
        for n in (1, 2, 3):
            await sched.send(assign(n, parts[0]))
        await sched.wait_for(lambda: len(sched.results) == 1)
        refused = sched.results[0]
        assert refused.job_id == "job-3"
        assert refused.error is not None
        assert refused.error.code == "NODE_OVERLOADED"
        await sched.send(JobCancel(job_id="job-1", attempt_id="a1"))
        await sched.wait_for(lambda: agent.streams is not None and len(agent.streams.streams) <= 1)
        cancelled_at = len(partials(sched, 1))
        for seq, data in enumerate(parts[1:]):
            await sched.send(audio(1, seq, data, final=seq == len(parts) - 2))
            await sched.send(audio(2, seq, data, final=seq == len(parts) - 2))
        await sched.wait_for(lambda: any(r.job_id == "job-2" for r in sched.results))
        assert not any(r.job_id == "job-1" for r in sched.results)
        assert len(partials(sched, 1)) == cancelled_at
        assert agent.session.streams.dropped_chunks >= len(parts) - 1


async def test_the_register_advertises_streaming_and_its_capacity() -> None:
    backends = Backends(
        vad=LevelVAD(), asr=ScriptedStreamRecognizer(VOCAB), tts=TTSRouter([]), max_streams=3
    )
    register = capabilities.register_message(
        backends,
        "node-t",
        device="cpu",
        max_jobs=2,
        accept_public=True,
        token=None,
        binary_audio=False,
    )
    assert register.max_concurrent_streams == 3
    assert register.features_supported is not None
    assert register.features_supported.enable_streaming_asr is True
    assert register.features_supported.partial_update_interval_ms == 1000


async def test_shutdown_lets_a_running_stream_finish_then_the_node_leaves() -> None:
    parts = chunks(tone_speech(VOCAB, ["one", "two", "three"]))
    async with streaming_node(ScriptedStreamRecognizer(VOCAB)) as (sched, agent):
        await sched.send(assign(1, parts[0]))
        await sched.wait_for(lambda: sched.acks)
        await sched.send(NodeControl(command="shutdown"))
        await sched.wait_for(lambda: any(hb.draining for _, hb in sched.heartbeats))
        await sched.send(assign(2, parts[0]))
        await sched.wait_for(lambda: sched.results)
        assert sched.results[0].job_id == "job-2"
        assert sched.results[0].error is not None
        assert sched.results[0].error.code == "NODE_UNAVAILABLE"
        assert not agent.shutdown.is_set()
        for seq, data in enumerate(parts[1:]):
            await sched.send(audio(1, seq, data, final=seq == len(parts) - 2))
        await sched.wait_for(lambda: len(sched.results) == 2)
        assert sched.results[1].text_asr == "one two three"
        async with asyncio.timeout(10):
            await agent.shutdown.wait()


async def test_a_failover_assignment_with_all_the_audio_is_answered_at_once() -> None:
    whole = pcm(tone_speech(VOCAB, ["one", "two", "three"]))
    async with streaming_node(ScriptedStreamRecognizer(VOCAB)) as (sched, _agent):
        await sched.send(assign(1, whole).model_copy(update={"stream_closed": True}))
        await sched.wait_for(lambda: sched.results)
        assert sched.results[0].text_asr == "one two three"


async def test_audio_held_while_a_stream_opens_is_bounded() -> None:
    """Chunks that arrive before the stream has opened wait, up to the stream's audio limit;
    past it the stream fails with AUDIO_DECODE_FAILED instead of holding more."""
    from concurrent.futures import ThreadPoolExecutor

    from lingua_node._streaming.workers import StreamRunner

    opened = threading.Event()
    reports: list[object] = []
    reported = asyncio.Event()

    def slow_open(job: JobAssign) -> StreamJob:
        opened.wait(10)
        raise AssertionError("never reached in this test")

    async def report(key: object, out: object) -> None:
        reports.append(out)
        reported.set()

    with ThreadPoolExecutor(1) as pool:
        runner = StreamRunner(slow_open, pool, 1, report, config=StreamConfig(max_audio_s=0.5))
        runner.start(assign(1, b""))
        second = pcm(np.zeros(4000, dtype=np.float32))  # 0.25 s each
        runner.feed(("job-1", "a1"), audio(1, 0, second))
        runner.feed(("job-1", "a1"), audio(1, 1, second))
        assert reports == []
        runner.feed(("job-1", "a1"), audio(1, 2, second))
        async with asyncio.timeout(10):
            await reported.wait()
        opened.set()
        await runner.close()
    assert len(reports) == 1
    assert "limit" in str(reports[0])
