"""The instance a node is connected to dies (SIGKILL): the real node agent moves to the next
scheduler URL and registers there with its credential (bound on the dead instance, found in
Redis), and the job it was running for a client on the surviving instance is reassigned (to
another node: a retry never goes back to the node that lost it) and answered once. Real
scheduler processes, a real redis-server and the real node connection code; the node's
inference is a test double (no models)."""

from __future__ import annotations

import asyncio
import contextlib
import threading

import pytest
from lingua_node import NodeAgent, StageGate
from lingua_protocol import (
    CapabilityByType,
    JobAssign,
    JobResult,
    LanguageCapabilities,
    LanguagePair,
    NodeRegister,
    TranslationResult,
)
from lingua_scheduler.testing import ScriptedClient, ScriptedNode
from lingua_scheduler.testing.processes import SchedulerProcess
from lingua_scheduler.testing.redis_server import redis_available, running_redis

pytestmark = pytest.mark.skipif(not redis_available(), reason="needs redis-server")


def register() -> NodeRegister:
    return NodeRegister(
        node_id="mover",
        capability_schema_version="2.0",
        capability_by_type=[CapabilityByType(type=t, ready=True) for t in ("ASR", "NMT", "TTS")],
        language_capabilities=LanguageCapabilities(
            supported_language_pairs=[LanguagePair(src="en", tgt="zh")]
        ),
        max_concurrent_jobs=2,
    )


async def test_node_moves_to_the_next_instance_and_finishes_the_job_there() -> None:
    release = threading.Event()
    runs: list[str] = []

    def run_job(job: JobAssign, _gate: StageGate) -> JobResult:
        runs.append(job.attempt_id or "")
        release.wait(20)  # held until the first instance is dead
        return job.answer(
            "mover", success=True, text_asr="asr", text_translated="zh", processing_time_ms=1.0
        )

    async with running_redis() as redis:
        a, b = SchedulerProcess(redis.url), SchedulerProcess(redis.url)
        await a.start()
        await b.start()
        agent = NodeAgent(
            register,
            run_job,
            url=f"{a.node_url},{b.node_url}",
            node_id="mover",
            max_jobs=2,
            heartbeat_interval_s=1.0,
            reconnect_min_s=0.05,
            reconnect_max_s=0.2,
        )
        task = asyncio.create_task(agent.run())
        client = ScriptedClient(b.session_url, "en", "zh")
        try:
            await b.wait_ready_nodes(1)  # b sees the node a holds
            assert agent.urls.current == a.node_url
            await client.start()
            await client.utter(0)
            async with asyncio.timeout(10):
                while not runs:  # noqa: ASYNC110  (filled by the agent's worker thread)
                    await asyncio.sleep(0.02)
            stay = ScriptedNode(b.node_url, "stay", pairs=[("en", "zh")])
            await stay.start()  # after the job went to the mover: the retry goes here
            await a.kill()
            async with asyncio.timeout(15):
                while agent.stats.connects < 2:  # noqa: ASYNC110  (the agent's own counter)
                    await asyncio.sleep(0.02)
            assert agent.urls.current == b.node_url
            release.set()
            results = await client.recv_until(1, ("translation_result", "error"), timeout_s=20)
            assert isinstance(results[0], TranslationResult)
            assert results[0].utterance_index == 0
            assert results[0].node_id == "stay"
            await client.utter(1)
            again = await client.recv_until(1, ("translation_result", "error"), timeout_s=10)
            assert isinstance(again[0], TranslationResult)
            assert again[0].utterance_index == 1  # nothing more for 0: it was answered once
            await stay.close()
        finally:
            release.set()
            agent.shutdown.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            await client.close()
            await a.stop()
            await b.stop()
