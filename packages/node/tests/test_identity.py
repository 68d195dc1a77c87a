"""The node's credential: created on first run with mode 0600, presented in every register,
and a credential the scheduler hands to a node that had none is kept."""

from __future__ import annotations

import asyncio
import contextlib
import stat
from pathlib import Path
from typing import Any

import pytest
from lingua_node._agent import FatalNodeError, NodeAgent
from lingua_node._identity import credential, node_id, store_credential
from lingua_node._session import Send
from lingua_node.testing.scripted_scheduler import ScriptedScheduler
from lingua_protocol import ErrorCode, JobAssign, JobResult, NodeRegister, error_message


def test_the_credential_is_made_once_and_readable_by_its_owner_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = credential(home)
    assert len(first) >= 43
    assert credential(home) == first
    assert stat.S_IMODE((home / "node_credential").stat().st_mode) == 0o600
    (home / "node_credential").chmod(0o644)
    assert credential(home) == first
    assert stat.S_IMODE((home / "node_credential").stat().st_mode) == 0o600


def _no_jobs(job: JobAssign) -> JobResult:
    raise AssertionError("no job expected")


def _agent(url: str, node: str, **kw: Any) -> NodeAgent:
    """An agent for `node` that registers with `url` and expects no job."""
    return NodeAgent(
        lambda: NodeRegister(node_id=node), _no_jobs, url=url, node_id=node, max_jobs=1, **kw
    )


async def _register_once(agent: NodeAgent) -> None:
    """Run the agent until it has registered once (its status callback says so), then stop."""
    registered = asyncio.Event()
    agent.on_change = lambda: registered.set() if agent.stats.connected else None
    task = asyncio.create_task(agent.run())
    try:
        async with asyncio.timeout(10):
            await registered.wait()
    finally:
        agent.shutdown.set()
        if agent._ws is not None:
            await agent._ws.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)


async def test_the_agent_presents_its_credential(tmp_path: Path) -> None:
    scheduler = ScriptedScheduler(hand_credential="h" * 43)
    await scheduler.start()
    try:
        me = node_id(tmp_path)
        secret = credential(tmp_path)
        agent = _agent(scheduler.url, me, credential=secret)
        await _register_once(agent)
        assert scheduler.registers[0].node_credential == secret
        assert agent.credential == secret  # nothing handed: it presented one
    finally:
        await scheduler.stop()


async def test_a_handed_credential_is_kept_and_presented_next_time(tmp_path: Path) -> None:
    handed = "h" * 43
    scheduler = ScriptedScheduler(hand_credential=handed)
    await scheduler.start()
    try:
        agent = _agent(
            scheduler.url, "n", on_credential=lambda value: store_credential(tmp_path, value)
        )
        await _register_once(agent)
        assert scheduler.registers[0].node_credential is None
        assert agent.credential == handed
        assert credential(tmp_path) == handed
        again = agent.session.connected(NodeRegister(node_id="n"))[0]
        assert isinstance(again, Send)
        assert isinstance(again.message, NodeRegister)
        assert again.message.node_credential == handed
    finally:
        await scheduler.stop()


async def test_the_agent_stops_when_its_identity_is_taken_over(tmp_path: Path) -> None:
    """The same home run twice: the scheduler hands the id to the newer process and tells the
    older one NODE_ID_CONFLICT; reconnecting would take the id back, so it stops instead."""
    scheduler = ScriptedScheduler()
    await scheduler.start()
    try:
        agent = _agent(scheduler.url, "n", credential=credential(tmp_path))
        task = asyncio.create_task(agent.run())
        async with asyncio.timeout(10):
            await scheduler.connected.wait()
            await scheduler.send(error_message(ErrorCode.NODE_ID_CONFLICT, "taken over"))
            with pytest.raises(FatalNodeError, match="NODE_ID_CONFLICT"):
                await task
        assert len(scheduler.registers) == 1
    finally:
        await scheduler.stop()
