"""Several scheduler URLs: the node moves on to the next instance when one fails."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest
from lingua_node._agent import NodeAgent
from lingua_node.testing.agent_harness import plain_register
from lingua_node.testing.scripted_scheduler import ScriptedScheduler
from lingua_protocol import JobAssign, JobResult, UrlRotation, split_urls


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_split_urls_keeps_order_and_drops_blanks() -> None:
    assert split_urls(" ws://a/ws/node, ,ws://b/ws/node ") == ["ws://a/ws/node", "ws://b/ws/node"]
    with pytest.raises(ValueError, match="no scheduler URL"):
        split_urls(" , ")


def test_rotation_stays_while_it_works_and_wraps_after_failures() -> None:
    rotation = UrlRotation(["a", "b", "c"])
    assert rotation.current == "a"
    assert rotation.failed() == "b"
    assert rotation.failed() == "c"
    assert rotation.failed() == "a"


def _never_runs(_job: JobAssign, _gate: object) -> JobResult:
    raise AssertionError("no job is sent in this test")


async def test_node_registers_with_the_second_url_when_the_first_is_down() -> None:
    sched = ScriptedScheduler()
    await sched.start()
    dead = f"ws://127.0.0.1:{_closed_port()}/ws/node"
    agent = NodeAgent(
        plain_register(1),
        _never_runs,  # type: ignore[arg-type]
        url=f"{dead},{sched.url}",
        node_id="node-t",
        max_jobs=1,
        heartbeat_interval_s=0.25,
        reconnect_min_s=0.05,
        reconnect_max_s=0.2,
    )
    task = asyncio.create_task(agent.run())
    try:
        async with asyncio.timeout(10):
            await sched.connected.wait()
        assert sched.registers[0].node_id == "node-t"
        assert agent.urls.current == sched.url
    finally:
        agent.shutdown.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        await sched.stop()
