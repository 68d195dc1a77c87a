"""Redis goes away and comes back empty while two instances run (real redis-server, real
sockets, scripted test-double peers): an instance keeps serving the connections it has,
refuses new ones with HTTP 503, and after Redis is back it writes what it knows again and
serves the cluster as before."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import AsyncIterator

import pytest
from lingua_protocol import Error, TranslationResult
from lingua_scheduler.testing import Running, running_instances
from lingua_scheduler.testing.redis_server import RedisServer, redis_available
from websockets.exceptions import InvalidStatus

pytestmark = pytest.mark.skipif(not redis_available(), reason="needs redis-server")


@pytest.fixture
async def pair(redis: RedisServer) -> AsyncIterator[tuple[Running, Running]]:
    async with running_instances(2, redis_url=redis.url) as (a, b):
        yield a, b


def _health_and_metrics(sched: Running) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"{sched.http}/health", timeout=5) as reply:
            status = reply.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    with urllib.request.urlopen(f"{sched.http}/metrics", timeout=5) as reply:
        return status, reply.read().decode()


def _link(sched: Running):  # type: ignore[no-untyped-def]
    assert sched.server.cluster is not None
    return sched.server.cluster.link


async def test_redis_outage_keeps_connections_refuses_new_ones_and_recovers(
    redis: RedisServer, pair: tuple[Running, Running]
) -> None:
    a, b = pair
    node = await a.node("n1", pairs=[("en", "zh")])
    assert node.credential is not None
    client = await a.client("en", "zh")
    await client.utter(0)
    assert isinstance(await client.recv(), TranslationResult)

    await redis.stop()
    async with asyncio.timeout(10):
        await _link(a).wait_until(up=False)
    await client.utter(1)  # its own session and its own node need nothing from Redis
    answer = await client.recv()
    assert isinstance(answer, TranslationResult)
    assert answer.utterance_index == 1
    with pytest.raises(InvalidStatus) as refused:
        await a.client("en", "zh")
    assert refused.value.response.status_code == 503
    health, metrics = await asyncio.to_thread(_health_and_metrics, a)
    assert health == 503  # out of the balancer's rotation
    assert "lingua_cluster_redis_up 0.0" in metrics

    await redis.start()  # back on the same port, without its data
    async with asyncio.timeout(10):
        await _link(a).wait_until(up=True)
        await _link(b).wait_until(up=True)
    await _link(a).flush()  # what a wrote back (its node's credential) is in Redis
    impostor = await b.node("n1", credential="x" * 43, pairs=[("en", "zh")])
    assert isinstance(impostor.ack_message, Error)
    assert impostor.ack_message.code == "UNAUTHORIZED"
    fresh = await a.client("en", "zh")
    await fresh.utter(0)
    assert isinstance(await fresh.recv(), TranslationResult)


async def test_jobs_cross_instances_again_after_redis_restarts(
    redis: RedisServer, pair: tuple[Running, Running]
) -> None:
    a, b = pair
    await b.node("far", pairs=[("en", "zh")])
    await redis.restart()
    async with asyncio.timeout(10):
        await _link(a).wait_until(up=True)
        await _link(b).wait_until(up=True)
    client = await a.client("en", "zh")
    async with asyncio.timeout(10):
        while True:  # a sees b's node again once b has published it into the new Redis
            await client.utter(0)
            answer = await client.recv()
            if isinstance(answer, TranslationResult):
                break
            assert isinstance(answer, Error)
            assert answer.code == "NO_AVAILABLE_NODE"
            client = await a.client("en", "zh")
    assert answer.node_id == "far"
