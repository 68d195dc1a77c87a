"""Jobs across instances: real scheduler processes sharing a real redis-server, scripted
test-double peers. A client on one instance is served by a node on another."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from lingua_protocol import TranslationResult
from lingua_scheduler.testing import ScriptedClient, ScriptedNode
from lingua_scheduler.testing.processes import SchedulerProcess
from lingua_scheduler.testing.redis_server import RedisServer, redis_available, running_redis

# real scheduler processes and a real redis-server: end to end
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not redis_available(), reason="needs redis-server"),
]


@pytest.fixture
async def redis() -> AsyncIterator[RedisServer]:
    async with running_redis() as server:
        yield server


@pytest.fixture
async def two(redis: RedisServer) -> AsyncIterator[tuple[SchedulerProcess, SchedulerProcess]]:
    a, b = SchedulerProcess(redis.url), SchedulerProcess(redis.url)
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await a.stop()
        await b.stop()


async def test_client_on_one_instance_is_served_by_a_node_on_another(
    two: tuple[SchedulerProcess, SchedulerProcess],
) -> None:
    a, b = two
    node = ScriptedNode(b.node_url, "far-node")
    await node.start()
    client = ScriptedClient(a.session_url, "en", "zh")
    try:
        await a.wait_ready_nodes(1)  # a sees b's node through Redis
        await client.start()
        for index in range(3):
            await client.utter(index)
        results = await client.recv_until(3, ("translation_result",))
        assert [r.utterance_index for r in results if isinstance(r, TranslationResult)] == [
            0,
            1,
            2,
        ]
        assert all(isinstance(r, TranslationResult) and r.node_id == "far-node" for r in results)
        assert len(node.jobs) == 3  # each ran once, on b's node
    finally:
        await client.close()
        await node.close()
