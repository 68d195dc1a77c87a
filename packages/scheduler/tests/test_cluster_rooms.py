"""A room with members on three scheduler instances (real processes, a real redis-server,
scripted test-double peers): every member gets the speaker's utterance in its language."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest
from lingua_protocol import RoomCreate, RoomJoin, TranslationResult
from lingua_scheduler.testing import ScriptedClient, ScriptedNode
from lingua_scheduler.testing.processes import SchedulerProcess
from lingua_scheduler.testing.redis_server import RedisServer, redis_available

# real scheduler processes and a real redis-server: end to end
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not redis_available(), reason="needs redis-server"),
]

PAIRS = (("en", "zh"), ("en", "fr"), ("zh", "en"), ("fr", "en"))


async def test_room_with_members_on_three_instances(redis: RedisServer) -> None:
    async with AsyncExitStack() as stack:
        instances = [SchedulerProcess(redis.url) for _ in range(3)]
        for instance in instances:
            await instance.start()
            stack.push_async_callback(instance.stop)
        a, b, c = instances
        node = ScriptedNode(b.node_url, "room-node", pairs=PAIRS)
        await node.start()
        stack.push_async_callback(node.close)
        await a.wait_ready_nodes(1)
        await c.wait_ready_nodes(1)
        ana = ScriptedClient(a.session_url, "en", "zh")
        await ana.start()
        stack.push_async_callback(ana.close)
        await ana.send_raw(RoomCreate(display_name="Ana", preferred_lang="en").to_json())
        code = (await ana.recv_until(1, ("room_create_ack",)))[0].room_code  # type: ignore[attr-defined]
        members = []
        for name, lang, instance in (("Li", "zh", b), ("Marie", "fr", c)):
            client = ScriptedClient(instance.session_url, lang, "en")
            await client.start()
            stack.push_async_callback(client.close)
            await client.send_raw(
                RoomJoin(room_code=code, display_name=name, preferred_lang=lang).to_json()
            )
            members.append((client, lang))
        # everyone is in: the last join's member list reached the first member
        for client, _ in members:
            await client.recv_until(1, ("room_members",))
        await ana.recv_until(2, ("room_members",))
        await ana.utter(0)
        spoken = await ana.recv_until(1, ("translation_result",))
        assert isinstance(spoken[0], TranslationResult)
        for client, lang in members:
            got = await client.recv_until(1, ("translation_result",))
            assert isinstance(got[0], TranslationResult)
            assert got[0].tgt_lang == lang
