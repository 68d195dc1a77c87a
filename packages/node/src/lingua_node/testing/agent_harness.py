"""Run the real `NodeAgent` against a scripted test-double scheduler over a real WebSocket:
the harness of the node's connection tests, shared by its test modules."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from lingua_protocol import AudioData, JobAssign, JobResult, NodeRegister

from .. import _capabilities as capabilities
from .._agent import NodeAgent
from .._jobs import StageGate
from .scripted_scheduler import ScriptedScheduler

Runner = Callable[[JobAssign, StageGate], JobResult]


def job(n: int, audio: bytes = b"\x00\x00" * 1600, fmt: str = "pcm16", **fields: Any) -> JobAssign:
    """Job `n` of session s1, en -> en, attempt a1; `fields` set the rest (e.g. `stream`)."""
    return JobAssign(
        job_id=f"job-{n}",
        attempt_id="a1",
        session_id="s1",
        utterance_index=n,
        src_lang="en",
        tgt_lang="en",
        audio=AudioData.from_bytes(audio),
        audio_format=fmt,
        **fields,
    )


def plain_register(max_jobs: int) -> Callable[[], NodeRegister]:
    """A register with no models behind it, for tests of the connection alone."""
    return lambda: NodeRegister(node_id="node-t", max_concurrent_jobs=max_jobs)


@contextlib.asynccontextmanager
async def running(
    run_job: Runner,
    backends: object = None,
    heartbeat_s: float = 0.25,
    max_jobs: int = 2,
    **kw: Any,
) -> AsyncIterator[tuple[ScriptedScheduler, NodeAgent]]:
    sched = ScriptedScheduler()
    await sched.start()

    def real_register():  # type: ignore[no-untyped-def]
        return capabilities.register_message(
            backends,
            "node-t",
            device="cpu",
            max_jobs=max_jobs,
            accept_public=True,  # type: ignore[arg-type]
            token=None,
            binary_audio=False,
        )

    register = real_register if backends is not None else plain_register(max_jobs)
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
    )
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
