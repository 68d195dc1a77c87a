"""The node agent against a scripted test-double scheduler over real WebSockets."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import pytest
from lingua_node import capabilities
from lingua_node.agent import NodeAgent
from lingua_node.pipeline import Pipeline
from lingua_protocol import (
    AudioData,
    JobAssign,
    JobCancel,
    JobResult,
    NodeControl,
)
from lingua_protocol.audio import float32_to_pcm16, read_wav
from scripted_scheduler import ScriptedScheduler
from wer import wer


def job(n: int, audio: bytes = b"\x00\x00" * 1600, fmt: str = "pcm16") -> JobAssign:
    return JobAssign(
        job_id=f"job-{n}",
        attempt_id="a1",
        session_id="s1",
        utterance_index=n,
        src_lang="en",
        tgt_lang="en",
        audio=AudioData.from_bytes(audio),
        audio_format=fmt,
    )


@contextlib.asynccontextmanager
async def running(
    run_job: Callable[[JobAssign], JobResult],
    backends: object,
    heartbeat_s: float = 0.25,
    max_jobs: int = 2,
    **kw: object,
) -> AsyncIterator[tuple[ScriptedScheduler, NodeAgent]]:
    sched = ScriptedScheduler()
    await sched.start()

    def register():  # type: ignore[no-untyped-def]
        return capabilities.register_message(
            backends,
            "node-t",
            device="cpu",
            max_jobs=max_jobs,
            accept_public=True,  # type: ignore[arg-type]
            token=None,
            binary_audio=False,
        )

    agent = NodeAgent(
        register,
        run_job,
        url=sched.url,
        node_id="node-t",
        max_jobs=max_jobs,
        heartbeat_interval_s=heartbeat_s,
        reconnect_min_s=0.05,
        reconnect_max_s=0.2,
        **kw,
    )  # type: ignore[arg-type]
    task = asyncio.create_task(agent.run())
    try:
        async with asyncio.timeout(10):
            await sched.connected.wait()
        yield sched, agent
    finally:
        agent.shutdown.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        with contextlib.suppress(Exception):
            await sched.stop()


@pytest.fixture(scope="module")
def pipeline(backends) -> Pipeline:  # type: ignore[no-untyped-def]
    return Pipeline(backends, "node-t")


async def test_register_heartbeat_job_result_with_real_models(
    pipeline: Pipeline, speech_items: list[dict[str, str]]
) -> None:
    async with running(pipeline.run, pipeline.b) as (sched, _agent):
        reg = sched.registers[0]
        langs = reg.language_capabilities
        assert langs is not None and "en" in (langs.asr_languages or [])
        assert langs.speech_translation_targets == ["en"] and "en" in (langs.tts_languages or [])
        item = speech_items[2]
        await sched.send(job(1, Path(item["path"]).read_bytes(), "wav"))
        await sched.wait_for(lambda: sched.results and len(sched.heartbeats) >= 1)
        assert sched.acks[0].job_id == "job-1"
        result = sched.results[0]
        # One sentence through the agent: the real transcript, within one word of the text
        # ("to night" for "tonight" on some CPUs); test_pipeline_real_models holds the corpus
        # to 10% WER.
        assert result.success and wer(item["text"], result.text_asr or "") <= 0.2
        assert result.tts_sample_rate == 22050 and result.service_timings is not None
        beat = sched.heartbeats[0][1]
        assert beat.resource_usage is not None and beat.resource_usage.mem_percent


async def test_heartbeats_keep_their_interval_while_a_long_job_runs(
    pipeline: Pipeline, speech_items: list[dict[str, str]]
) -> None:
    clips = [read_wav(item["path"])[0] for item in speech_items]
    long_audio = float32_to_pcm16(np.concatenate(clips * 2))  # ~50 s of speech
    async with running(pipeline.run, pipeline.b, heartbeat_s=0.25) as (sched, _agent):
        await sched.send(job(1, long_audio))
        await sched.wait_for(lambda: sched.acks)
        start = len(sched.heartbeats)
        await sched.wait_for(lambda: sched.results, timeout_s=120)
        beats = [t for t, _ in sched.heartbeats[start:]]
        gaps = np.diff(beats)
        assert len(gaps) >= 4, "the job was too short to say anything"
        assert sched.results[0].success
        assert all(0.8 * 0.25 <= g <= 1.2 * 0.25 for g in gaps), gaps
        assert statistics.mean(gaps) == pytest.approx(0.25, rel=0.2)


def gated_runner() -> tuple[Callable[[JobAssign], JobResult], threading.Event, list[str]]:
    """A test-double job runner that blocks until the test opens the gate."""
    gate = threading.Event()
    ran: list[str] = []

    def run(j: JobAssign) -> JobResult:
        ran.append(j.job_id)
        gate.wait(10)
        return JobResult(
            job_id=j.job_id,
            attempt_id=j.attempt_id,
            success=True,
            session_id=j.session_id,
            utterance_index=j.utterance_index,
            text_asr="x",
            text_translated="x",
        )

    return run, gate, ran


async def test_job_cancel_discards_a_running_job_and_drops_a_waiting_one(backends) -> None:  # type: ignore[no-untyped-def]
    run, gate, _ran = gated_runner()
    async with running(run, backends, max_jobs=1) as (sched, agent):
        agent.pool._max_workers = 1
        await sched.send(job(1))
        await sched.wait_for(lambda: len(sched.acks) == 1)
        await sched.send(JobCancel(job_id="job-1", reason="test"))
        await asyncio.sleep(0.05)
        gate.set()
        await sched.send(job(2))
        await sched.wait_for(lambda: sched.results)
        assert [r.job_id for r in sched.results] == ["job-2"]
        assert agent.book.discarded == 1


async def test_drain_refuses_new_jobs_and_reports_it(backends) -> None:  # type: ignore[no-untyped-def]
    run, gate, _ran = gated_runner()
    gate.set()
    async with running(run, backends) as (sched, _agent):
        await sched.send(NodeControl(command="drain", reason="maintenance"))
        await sched.wait_for(lambda: any(hb.draining for _, hb in sched.heartbeats))
        await sched.send(job(1))
        await sched.wait_for(lambda: sched.results)
        refused = sched.results[0]
        assert not refused.success and refused.error is not None
        assert refused.error.code == "NODE_UNAVAILABLE"


async def test_reconnects_and_registers_again_after_the_scheduler_restarts(backends) -> None:  # type: ignore[no-untyped-def]
    run, gate, _ = gated_runner()
    gate.set()
    async with running(run, backends) as (sched, agent):
        port = sched.port
        await sched.stop()
        await asyncio.sleep(0.3)
        again = ScriptedScheduler(port)
        await again.start()
        try:
            async with asyncio.timeout(10):
                await again.connected.wait()
                while agent.stats.connects < 2:  # the ack is on its way to the node
                    await asyncio.sleep(0.01)
            assert again.registers[0].node_id == "node-t"
            await again.send(job(5))
            await again.wait_for(lambda: again.results)
            assert again.results[0].success
        finally:
            await again.stop()


async def test_pairing_code_is_requested_and_shown(backends) -> None:  # type: ignore[no-untyped-def]
    run, _gate, _ = gated_runner()
    async with running(run, backends, request_pairing=True) as (_sched, agent):
        async with asyncio.timeout(5):
            await agent.pairing_received.wait()
        assert agent.stats.pairing_code == "123456"
