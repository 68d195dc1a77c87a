"""An established peer's messages are handled in the callback that reads them (`_inline`); the
read loop keeps what is unusual (size, failures) and the order."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
from lingua_protocol import Message, RoomCreate
from lingua_scheduler._inline import InlineConnection
from lingua_scheduler._server import Peer
from lingua_scheduler.testing import running_scheduler
from lingua_scheduler.testing.redis_server import RedisServer, redis_available
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


async def test_an_established_peers_messages_are_taken_inline_and_answered_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with running_scheduler() as sched:
        server = sched.server
        taken: list[str] = []
        take = server._take

        def spy(peer: Peer, parse: Callable[[bytes], Message], data: bytes) -> bool:
            taken.append(peer.kind)
            return take(peer, parse, data)

        monkeypatch.setattr(server, "_take", spy)
        await sched.node("a")
        client = await sched.client()
        peer = server.peers[next(c for c in server.peers if c.startswith("session-"))]
        assert isinstance(peer.ws, InlineConnection)
        assert peer.ws.take is not None  # idle, nothing queued: the next message goes inline
        for index in range(10):
            await client.utter(index)
        results = [await client.recv() for _ in range(10)]
        assert [r.utterance_index for r in results] == list(range(10))
        assert {r.type for r in results} == {"translation_result"}
        # every utterance, and every ack and result of the node, was taken where it was read
        assert taken.count("session") == 10
        assert taken.count("node") >= 10


async def test_an_oversized_message_after_session_init_is_left_to_the_loop_1009() -> None:
    async with running_scheduler(max_message_bytes=64 * 1024) as sched:
        other = await sched.client()
        client = await sched.client()
        await client.send_raw(json.dumps({"type": "x", "pad": "a" * (100 * 1024)}))
        error = await client.recv()
        assert error.type == "error"
        assert error.code == "MESSAGE_TOO_LARGE"
        assert client.ws is not None
        with pytest.raises(ConnectionClosed) as info:
            await client.ws.recv()
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1009
        await other.send_raw(
            json.dumps({"type": "client_heartbeat", "session_id": other.session_id, "timestamp": 1})
        )
        assert (await other.recv()).type == "server_heartbeat"


async def test_a_failure_while_taking_a_message_closes_only_that_peer_1011(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with running_scheduler() as sched:
        server = sched.server
        parse_charged = server._parse_charged

        def failing(
            peer: Peer, parse: Callable[[bytes], Message], data: bytes
        ) -> tuple[Message | None, float]:
            if b"boom" in data:
                raise RuntimeError("a bug in the shell")
            return parse_charged(peer, parse, data)

        monkeypatch.setattr(server, "_parse_charged", failing)
        other = await sched.client()
        async with connect(sched.session_url) as ws:
            await ws.send(json.dumps({"type": "session_init", "src_lang": "en", "tgt_lang": "zh"}))
            session_id = json.loads(await ws.recv())["session_id"]
            await asyncio.sleep(0.05)  # the loop waits for the next message: it goes inline
            beat = {"type": "client_heartbeat", "session_id": session_id, "timestamp": 1}
            await ws.send(json.dumps({**beat, "boom": 1}))
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 5)
            assert info.value.rcvd is not None
            assert info.value.rcvd.code == 1011
        await other.send_raw(
            json.dumps({"type": "client_heartbeat", "session_id": other.session_id, "timestamp": 1})
        )
        assert (await other.recv()).type == "server_heartbeat"


@pytest.mark.skipif(not redis_available(), reason="needs redis-server")
async def test_on_a_cluster_a_message_that_waits_on_redis_keeps_its_place(
    redis: RedisServer,
) -> None:
    """`room_create` is decided on cluster-wide state: parsed inline, it is left to the read
    loop, which reads Redis before running it; the heartbeat sent right after it waits."""
    async with running_scheduler(redis_url=redis.url) as sched:
        client = await sched.client()
        await asyncio.sleep(0.05)  # the loop waits for the next message: it goes inline
        await client.send_raw(RoomCreate(display_name="Ana", preferred_lang="en").to_json())
        await client.send_raw(
            json.dumps(
                {"type": "client_heartbeat", "session_id": client.session_id, "timestamp": 1}
            )
        )
        answers = [(await client.recv()).type]
        while answers[-1] != "server_heartbeat":
            answers.append((await client.recv()).type)
        assert answers == ["room_create_ack", "room_members", "server_heartbeat"]
