"""The node agent against a scripted test-double scheduler over real WebSockets."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from lingua_node._jobs import StageGate
from lingua_node._pipeline import Pipeline
from lingua_node.testing.agent_harness import Runner, job, running
from lingua_node.testing.scripted_scheduler import ScriptedScheduler
from lingua_node.testing.wer import wer
from lingua_protocol import (
    JobAssign,
    JobCancel,
    JobResult,
    NodeControl,
)


@pytest.fixture(scope="module")
def pipeline(backends) -> Pipeline:  # type: ignore[no-untyped-def]
    return Pipeline(backends, "node-t")


async def test_register_heartbeat_job_result_with_real_models(
    pipeline: Pipeline, speech_items: list[dict[str, str]]
) -> None:
    async with running(pipeline.run, pipeline.b) as (sched, _agent):
        reg = sched.registers[0]
        langs = reg.language_capabilities
        assert langs is not None
        assert "en" in (langs.asr_languages or [])
        assert langs.speech_translation_targets == ["en"]
        assert "en" in (langs.tts_languages or [])
        item = speech_items[2]
        audio = await asyncio.to_thread(Path(item["path"]).read_bytes)
        await sched.send(job(1, audio, "wav"))
        await sched.wait_for(lambda: sched.results and len(sched.heartbeats) >= 1)
        assert sched.acks[0].job_id == "job-1"
        result = sched.results[0]
        # One sentence through the agent: the real transcript, within one word of the text
        # ("to night" for "tonight" on some CPUs); test_pipeline_real_models holds the corpus
        # to 10% WER.
        assert result.success
        assert wer(item["text"], result.text_asr or "") <= 0.2
        assert result.tts_sample_rate == 22050
        assert result.service_timings is not None
        beat = sched.heartbeats[0][1]
        assert beat.resource_usage is not None
        assert beat.resource_usage.mem_percent


def gated_runner() -> tuple[Runner, threading.Event, list[str]]:
    """A test-double job runner that blocks until the test opens the gate. `ran` records the
    job id and the name of the thread it ran on."""
    gate = threading.Event()
    ran: list[str] = []

    def run(j: JobAssign, _gate: StageGate) -> JobResult:
        ran.append(f"{j.job_id}@{threading.current_thread().name}")
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


async def test_inference_runs_off_the_event_loop() -> None:
    """While a job blocks its worker thread, the loop keeps heartbeating and acking."""
    run, gate, ran = gated_runner()
    async with running(run, heartbeat_s=0.05, max_jobs=2) as (sched, _agent):
        await sched.send(job(1))
        await sched.wait_for(lambda: ran)
        start = len(sched.heartbeats)
        await sched.wait_for(lambda: len(sched.heartbeats) >= start + 3)
        await sched.send(job(2))
        await sched.wait_for(lambda: len(sched.acks) == 2)
        assert not sched.results, "the blocked job cannot have finished"
        gate.set()
        await sched.wait_for(lambda: len(sched.results) == 2)
    assert all("@lingua-job" in entry for entry in ran), ran


async def test_job_cancel_discards_a_running_job_and_drops_a_waiting_one() -> None:
    run, gate, _ran = gated_runner()
    async with running(run, max_jobs=1) as (sched, agent):
        await sched.send(job(1))
        await sched.wait_for(lambda: len(sched.acks) == 1)
        await sched.send(JobCancel(job_id="job-1", reason="test"))
        await sched.wait_for(lambda: agent.book.cancelled)
        gate.set()
        await sched.wait_for(lambda: agent.book.discarded == 1)
        await sched.send(job(2))
        await sched.wait_for(lambda: sched.results)
        assert [r.job_id for r in sched.results] == ["job-2"]
        assert agent.book.discarded == 1


async def test_drain_refuses_new_jobs_and_reports_it() -> None:
    run, gate, _ran = gated_runner()
    gate.set()
    async with running(run) as (sched, _agent):
        await sched.send(NodeControl(command="drain", reason="maintenance"))
        await sched.wait_for(lambda: any(hb.draining for _, hb in sched.heartbeats))
        await sched.send(job(1))
        await sched.wait_for(lambda: sched.results)
        refused = sched.results[0]
        assert not refused.success
        assert refused.error is not None
        assert refused.error.code == "NODE_UNAVAILABLE"


async def test_reconnects_and_registers_again_after_the_scheduler_restarts() -> None:
    run, gate, _ = gated_runner()
    gate.set()
    async with running(run) as (sched, agent):
        port = sched.port
        await sched.stop()
        await asyncio.sleep(0.3)
        again = ScriptedScheduler(port)
        await again.start()
        try:
            async with asyncio.timeout(10):
                await again.connected.wait()
            # the ack is on its way to the node; its heartbeats wake the wait
            await again.wait_for(lambda: agent.stats.connects >= 2, timeout_s=10)
            assert again.registers[0].node_id == "node-t"
            await again.send(job(5))
            await again.wait_for(lambda: again.results)
            assert again.results[0].success
        finally:
            await again.stop()


async def test_pairing_code_is_requested_and_shown() -> None:
    run, _gate, _ = gated_runner()
    async with running(run, request_pairing=True) as (_sched, agent):
        async with asyncio.timeout(5):
            await agent.pairing_received.wait()
        assert agent.stats.pairing_code == "123456"
