"""Node identity over real sockets: a node id is bound to the node's credential on first use;
a second live connection with the id gets NODE_ID_CONFLICT and the live node stays; taking
over needs the credential; bindings survive a restart (issue finding: node identity takeover)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from lingua_protocol import Error, NodeRegisterAck, parse_scheduler_message
from lingua_scheduler import SchedulerServer, SchedulerSettings
from lingua_scheduler._core.credentials import new_secret
from lingua_scheduler.testing import REFERENCE_REGISTER, ScriptedClient, ScriptedNode
from websockets.asyncio.client import connect


async def _server(**settings: Any) -> SchedulerServer:
    server = SchedulerServer(SchedulerSettings(host="127.0.0.1", port=0, **settings))
    await server.start()
    return server


@pytest.fixture
async def server() -> AsyncIterator[SchedulerServer]:
    running = await _server()
    yield running
    await running.stop()


def _urls(server: SchedulerServer) -> tuple[str, str]:
    base = f"ws://127.0.0.1:{server.port}"
    return f"{base}/ws/node", f"{base}/ws/session"


async def _closed(node: ScriptedNode) -> int | None:
    assert node.ws is not None
    async with asyncio.timeout(5):
        await node.ws.wait_closed()
    return node.ws.close_code


async def test_a_second_live_connection_gets_conflict_and_the_live_node_keeps_its_sessions(
    server: SchedulerServer,
) -> None:
    node_url, session_url = _urls(server)
    live = ScriptedNode(node_url, "a")
    await live.start()
    intruder = ScriptedNode(node_url, "a")
    reply = await intruder.start()
    assert isinstance(reply, Error)
    assert reply.code == "NODE_ID_CONFLICT"
    assert await _closed(intruder) == 1008
    client = ScriptedClient(session_url, "en", "zh")
    await client.start()
    await client.utter(0)
    result = await client.recv()
    assert result.type == "translation_result"
    assert len(live.jobs) == 1
    assert not intruder.jobs
    assert live.ws is not None
    assert live.ws.close_code is None
    await client.close()
    await live.close()


async def test_a_wrong_credential_cannot_take_over_a_live_node(server: SchedulerServer) -> None:
    node_url, _ = _urls(server)
    live = ScriptedNode(node_url, "a", credential=new_secret())
    await live.start()
    intruder = ScriptedNode(node_url, "a", credential=new_secret())
    reply = await intruder.start()
    assert isinstance(reply, Error)
    assert reply.code == "NODE_ID_CONFLICT"
    assert server.core.registry.nodes["a"].conn_id is not None
    await live.close()


async def test_the_node_with_its_credential_takes_over_a_silently_dead_connection(
    server: SchedulerServer,
) -> None:
    node_url, session_url = _urls(server)
    secret = new_secret()
    old = ScriptedNode(node_url, "a", credential=secret)
    await old.start()
    restarted = ScriptedNode(node_url, "a", credential=secret)
    ack = await restarted.start()
    assert isinstance(ack, NodeRegisterAck)
    assert ack.node_credential is None
    assert await _closed(old) == 1008
    told = [m for m in old.received if isinstance(m, Error)]
    assert [e.code for e in told] == ["NODE_ID_CONFLICT"]  # so a real agent stops, not flaps
    client = ScriptedClient(session_url, "en", "zh")
    await client.start()
    await client.utter(0)
    result = await client.recv()
    assert result.type == "translation_result"
    assert len(restarted.jobs) == 1
    assert not old.jobs
    await client.close()
    await restarted.close()


async def test_a_v01_node_is_handed_a_credential_that_a_later_registration_needs(
    server: SchedulerServer,
) -> None:
    node_url, _ = _urls(server)
    first = ScriptedNode(node_url, "test-node-python-1", register=REFERENCE_REGISTER)
    ack = await first.start()
    assert isinstance(ack, NodeRegisterAck)
    assert ack.status == "ready"
    handed = ack.node_credential
    assert handed is not None
    assert len(handed) >= 32
    await first.close()
    await _closed(first)
    again = ScriptedNode(node_url, "test-node-python-1", register=REFERENCE_REGISTER)
    reply = await again.start()
    assert isinstance(reply, Error)
    assert reply.code == "UNAUTHORIZED"
    with_it = ScriptedNode(
        node_url, "test-node-python-1", register=REFERENCE_REGISTER, credential=handed
    )
    assert isinstance(await with_it.start(), NodeRegisterAck)
    await with_it.close()


async def test_bindings_survive_a_restart_and_only_the_digest_is_stored(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite3"
    secret = new_secret()
    first = await _server(state_path=state)
    try:
        node = ScriptedNode(_urls(first)[0], "a", credential=secret)
        assert isinstance(await node.start(), NodeRegisterAck)
        await node.close()
    finally:
        await first.stop()
    assert secret.encode() not in state.read_bytes()
    second = await _server(state_path=state)
    try:
        impostor = ScriptedNode(_urls(second)[0], "a", credential=new_secret())
        reply = await impostor.start()
        assert isinstance(reply, Error)
        assert reply.code == "UNAUTHORIZED"
        node = ScriptedNode(_urls(second)[0], "a", credential=secret)
        assert isinstance(await node.start(), NodeRegisterAck)
        await node.close()
    finally:
        await second.stop()


async def test_a_pairing_follows_the_credential_not_the_name(server: SchedulerServer) -> None:
    node_url, session_url = _urls(server)
    node = ScriptedNode(node_url, "home", credential=new_secret(), accept_public=False)
    await node.start()
    assert node.ws is not None
    from lingua_protocol import PairingCode, PairingCodeRequest

    await node.ws.send(PairingCodeRequest(node_id="home").to_json())
    code = await node.next_message()
    assert isinstance(code, PairingCode)
    intruder = ScriptedNode(node_url, "home", credential=new_secret())
    assert isinstance(await intruder.start(), Error)
    client = ScriptedClient(session_url, "en", "zh", pairing_code=code.code)
    ack = await client.start()
    assert ack.type == "session_init_ack"
    assert ack.assigned_node_id == "home"
    await client.utter(0)
    assert (await client.recv()).type == "translation_result"
    assert len(node.jobs) == 1
    await client.close()
    await node.close()


async def test_a_register_padded_with_unknown_fields_is_not_kept() -> None:
    """A register's frame size is capped on its own (before parsing), since the scheduler
    keeps the register as long as it knows the node."""
    running = await _server(max_register_bytes=64 * 1024)
    try:
        node_url, _ = _urls(running)
        async with connect(node_url, max_size=None) as ws:
            await ws.send(json.dumps({**REFERENCE_REGISTER, "pad": "x" * 100_000}))
            async with asyncio.timeout(5):
                reply = parse_scheduler_message(await ws.recv())
        assert isinstance(reply, Error)
        assert reply.code == "MESSAGE_TOO_LARGE"
        assert "fat" not in running.core.registry.nodes
        assert "test-node-python-1" not in running.core.registry.nodes
    finally:
        await running.stop()
