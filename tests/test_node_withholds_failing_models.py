"""A real scheduler (in-process) and the real node agent and pipeline over test-double models
that fail like a missing cuBLAS: what fails its self-test is never advertised, so the
scheduler never sends the node that job; a model that starts failing at run time is withdrawn
after N failures in a row, reported with `node_error`, and the scheduler stops sending it jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from lingua_node import (
    ENGINES,
    AsrOption,
    ASRRouter,
    Backends,
    NodeAgent,
    NodeSettings,
    Pipeline,
    StageGate,
    TTSRouter,
    load_recognizer,
)
from lingua_node import _capabilities as capabilities
from lingua_protocol import JobAssign, JobResult, PipelineConfig
from lingua_scheduler import SchedulerServer, SchedulerSettings
from lingua_scheduler.testing import ScriptedClient

DOUBLES = "lingua_node.testing.backend_doubles"  # the engine registry imports engines by name


doubles_module = importlib.import_module(DOUBLES)
CUBLAS_MISSING: str = doubles_module.CUBLAS_MISSING
PassThroughVAD = doubles_module.PassThroughVAD
ENGINE_DOUBLES = (
    doubles_module.SpeechTranslatingRecognizer,
    doubles_module.BrokenEverywhereRecognizer,
    doubles_module.FailsAfterSelfTestRecognizer,
)

TEXT_ONLY = PipelineConfig(use_asr=True, use_nmt=False, use_tts=False)


def node_backends(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Backends:
    """en-asr: fails on CUDA, falls back to the CPU; es-broken: fails everywhere, withheld;
    fr-flaky: passes its self-test, then fails every job."""
    withheld: dict[tuple[str, str], str] = {}

    def load(engine: str, model_id: str, langs: list[str]) -> AsrOption | None:
        s = NodeSettings(home=tmp_path, asr_engine=engine, device="cuda")
        return load_recognizer(s, tmp_path, model_id, "cuda", withheld, langs, "1")

    with caplog.at_level(logging.WARNING, logger="lingua.node"):
        options = [
            load("test-speech-translating", "en-asr", ["en"]),
            load("test-broken", "es-broken", ["es"]),
            load("test-fails-later", "fr-flaky", ["fr"]),
        ]
    # fr-flaky passed its self-test on CUDA (its first call), so its published "fr" stands
    return Backends(
        vad=PassThroughVAD(),
        asr=ASRRouter([o for o in options if o is not None]),
        tts=TTSRouter([]),
        withheld=withheld,
    )


@contextlib.asynccontextmanager
async def cluster(
    backends: Backends, ran: list[str]
) -> AsyncIterator[tuple[SchedulerServer, NodeAgent]]:
    server = SchedulerServer(
        SchedulerSettings(
            host="127.0.0.1", port=0, sticky_nodes=False, utterances_per_s=100, queue_timeout_s=1
        )
    )
    await server.start()
    pipeline = Pipeline(backends, "node-w")

    def run(job: JobAssign, gate: StageGate) -> JobResult:
        ran.append(f"{job.src_lang}:{job.utterance_index}")
        return pipeline.run(job, gate)

    agent = NodeAgent(
        lambda: capabilities.register_message(
            backends,
            "node-w",
            device="cuda",
            max_jobs=2,
            accept_public=True,
            token=None,
            binary_audio=False,
        ),
        run,
        url=f"ws://127.0.0.1:{server.port}/ws/node",
        node_id="node-w",
        max_jobs=2,
        heartbeat_interval_s=30,
        withdrawals=backends.health.take_withdrawals,
    )
    task = asyncio.create_task(agent.run())
    try:
        # degraded, not ready: it has no TTS voice; it gets jobs all the same
        await until(lambda: _status(server) in ("ready", "degraded"))
        yield server, agent
    finally:
        agent.shutdown.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        await server.stop()


def _status(server: SchedulerServer) -> str | None:
    node = server.core.registry.nodes.get("node-w")
    return node.status if node is not None else None


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Wait for a state the scheduler reaches by handling a message (polled, with a limit)."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110  (state behind a real socket: no event to await)
            await asyncio.sleep(0.01)


async def test_the_scheduler_never_sends_what_failed_the_self_test(
    doubles: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backends = node_backends(tmp_path, caplog)
    fallback = [r.getMessage() for r in caplog.records if "en-asr" in r.getMessage()]
    assert len(fallback) == 1
    assert CUBLAS_MISSING in fallback[0]
    assert "CPU" in fallback[0]
    assert ("asr", "es-broken") in backends.withheld
    ran: list[str] = []
    async with cluster(backends, ran) as (server, _agent):
        caps = server.core.registry.nodes["node-w"].caps
        assert "es" not in caps.asr_languages
        assert {"en", "fr"} <= caps.asr_languages
        client = ScriptedClient(f"ws://127.0.0.1:{server.port}/ws/session", "es", "es")
        await client.start()
        try:
            await client.utter(0, pipeline=TEXT_ONLY)
            refused = (await client.recv_until(1, ("error", "translation_result")))[0]
            assert refused.type == "error"
            assert refused.code == "NO_AVAILABLE_NODE"
            await client.utter(1, src_lang="en", tgt_lang="en", pipeline=TEXT_ONLY)
            served = (await client.recv_until(1, ("error", "translation_result")))[0]
            assert served.type == "translation_result"
            assert served.text_asr == "heard by en-asr"  # type: ignore[attr-defined]
        finally:
            await client.close()
    assert ran == ["en:1"]  # the Spanish job never reached the node


async def test_a_model_failing_at_run_time_is_withdrawn_and_gets_no_more_jobs(
    doubles: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backends = node_backends(tmp_path, caplog)
    ran: list[str] = []
    async with cluster(backends, ran) as (server, agent):
        client = ScriptedClient(f"ws://127.0.0.1:{server.port}/ws/session", "fr", "fr")
        await client.start()
        try:
            limit = backends.health.failure_limit
            for index in range(limit):
                await client.utter(index, pipeline=TEXT_ONLY)
            await until(lambda: "fr" not in server.core.registry.nodes["node-w"].caps.asr_languages)
            assert server.core.counters.get("node_errors") == 1
            assert agent.stats.withdrawn == ["asr fr-flaky"]  # shown in the node's display
            assert sorted(ran) == [f"fr:{i}" for i in range(limit)]
            # each failed job was retried elsewhere; with no other node, it ends in an error
            failed = await client.recv_until(limit, ("error", "translation_result"))
            assert all(m.type == "error" for m in failed)
            tried = len(ran)

            await client.utter(limit, pipeline=TEXT_ONLY)
            refused = (await client.recv_until(1, ("error", "translation_result")))[0]
            assert refused.code == "NO_AVAILABLE_NODE"  # type: ignore[attr-defined]
            await client.utter(limit + 1, src_lang="en", tgt_lang="en", pipeline=TEXT_ONLY)
            served = (await client.recv_until(1, ("error", "translation_result")))[0]
            assert served.type == "translation_result"
        finally:
            await client.close()
    assert len(ran) == tried + 1
    assert ran[-1] == f"en:{limit + 1}"
    assert ("asr", "fr-flaky") in backends.withheld


@pytest.fixture
def doubles(monkeypatch: pytest.MonkeyPatch) -> None:
    for cls in ENGINE_DOUBLES:
        monkeypatch.setitem(ENGINES["asr"], cls.engine, f"{DOUBLES}:{cls.__name__}")
