"""Jobs across instances: real scheduler processes sharing a real redis-server, scripted
test-double peers. A client on one instance is served by a node on another."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio as aioredis
from lingua_protocol import TranslationResult
from lingua_scheduler._cluster.link import RedisLink
from lingua_scheduler._cluster.relay import INBOX_TTL_S, Entry, Relay
from lingua_scheduler.testing import ScriptedClient, ScriptedNode
from lingua_scheduler.testing.processes import SchedulerProcess
from lingua_scheduler.testing.redis_server import RedisServer, redis_available

# real scheduler processes and a real redis-server: end to end
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not redis_available(), reason="needs redis-server"),
]


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


def _calls(stats: dict[str, Any], command: str) -> int:
    entry = stats.get(f"cmdstat_{command}") or {}
    return int(entry.get("calls", 0))


async def test_a_relayed_job_costs_two_xadds_and_no_expiry_of_its_own(
    redis: RedisServer,
) -> None:
    """A job that crosses instances is two XADDs: its assignment, and the node's ack and
    result (ready together) in one entry; the inbox's expiry is kept by its owner (not
    refreshed per message), and XACKs ride with the next read. The node's instance holds an
    ack up to `cluster_ack_hold_ms` (here 50 ms, so that a loaded machine cannot split them)."""
    a = SchedulerProcess(redis.url)
    b = SchedulerProcess(redis.url, cluster_ack_hold_ms=50)
    await a.start()
    await b.start()
    node = ScriptedNode(b.node_url, "far-node")
    await node.start()
    client = ScriptedClient(a.session_url, "en", "zh")
    stats = aioredis.from_url(redis.url)
    count = 20
    try:
        await a.wait_ready_nodes(1)
        await client.start()
        await stats.config_resetstat()
        for index in range(count):
            await client.utter(index)
        results = await client.recv_until(count, ("translation_result",))
        assert len(results) == count
        commands = await stats.info("commandstats")
        # job_assign; job_ack with job_result: three messages in two entries per utterance.
        assert _calls(commands, "xadd") == 2 * count
        # Only the owners' periodic keep-alives (one per second per instance), not per message.
        assert _calls(commands, "pexpire") < count
        assert _calls(commands, "xack") <= _calls(commands, "xreadgroup")
    finally:
        await stats.aclose()
        await client.close()
        await node.close()
        await a.stop()
        await b.stop()


async def test_a_message_for_a_missing_inbox_creates_it_with_an_expiry(
    redis: RedisServer,
) -> None:
    """Redis restarted empty (or the receiver is long gone): the entry waits in a new inbox,
    which expires if nobody reads it."""
    link = RedisLink(redis.url)
    await link.start()
    relay = Relay(link, redis.url, "sender", "test:")
    check = aioredis.from_url(redis.url)
    try:
        relay.send("gone", "to_node", "n1", b'{"type":"job_cancel"}', message_type="job_cancel")
        await link.flush()  # with the retry that creates the inbox, queued by the first reply
        inbox = relay.inbox_of("gone")
        assert await check.xlen(inbox) == 1
        assert 0 < await check.pttl(inbox) <= INBOX_TTL_S * 1000
        assert relay.inboxes_created == 1
    finally:
        await check.aclose()
        await relay.close()
        await link.close()


@dataclass
class OwnInbox:
    """A relay reading its own inbox, the entries it handled, and a second Redis client."""

    link: RedisLink
    relay: Relay
    check: aioredis.Redis
    handled: list[Entry] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def handle(self, entry: Entry) -> None:
        self.handled.append(entry)
        self.arrived.set()

    async def handled_count(self, n: int) -> None:
        async with asyncio.timeout(5):
            while len(self.handled) < n:
                self.arrived.clear()
                await self.arrived.wait()


@contextlib.asynccontextmanager
async def own_inbox(redis: RedisServer) -> AsyncIterator[OwnInbox]:
    link = RedisLink(redis.url)
    await link.start()
    relay = Relay(link, redis.url, "me", "test:")
    box = OwnInbox(link, relay, aioredis.from_url(redis.url))
    check = box.check
    try:
        await relay.start(box.handle)
        yield box
    finally:
        await check.aclose()
        await relay.close()
        await link.close()


async def test_handled_entries_are_trimmed_from_the_inbox_with_the_next_publication(
    redis: RedisServer,
) -> None:
    """An inbox holds what is in flight, not up to `INBOX_MAX_ENTRIES` entries of audio."""
    async with own_inbox(redis) as box:
        link, relay, check = box.link, box.relay, box.check
        for n in range(3):
            relay.send("me", "from_node", f"n{n}", b'{"type":"job_ack"}', message_type="job_ack")
        await box.handled_count(3)
        assert await check.xlen(relay.inbox) == 3
        await link.call(relay.keep_alive)  # what each node view publication adds
        assert await check.xlen(relay.inbox) == 0
        assert await check.pttl(relay.inbox) > 0


async def test_an_entry_of_several_messages_is_handled_in_order_and_acknowledged_once(
    redis: RedisServer,
) -> None:
    """A node's ack and result ready together cross in one entry (`Relay.send_all`)."""
    async with own_inbox(redis) as box:
        link, relay, check, handled = box.link, box.relay, box.check, box.handled
        relay.send_all("me", "from_node", "n1", [b'{"type":"job_ack"}', b'{"type":"job_result"}'])
        relay.send("me", "from_node", "n2", b'{"type":"job_ack"}')
        await box.handled_count(3)
        assert [(e.node_id, e.payload) for e in handled] == [
            ("n1", b'{"type":"job_ack"}'),
            ("n1", b'{"type":"job_result"}'),
            ("n2", b'{"type":"job_ack"}'),
        ]
        assert (relay.sent, relay.entries_sent, relay.received) == (3, 2, 3)
        assert await check.xlen(relay.inbox) == 2
        await link.call(relay.keep_alive)  # trimmed once handled: they were acknowledged
        assert await check.xlen(relay.inbox) == 0
        assert await check.xpending(relay.inbox, "lingua") == {
            "pending": 0,
            "min": None,
            "max": None,
            "consumers": [],
        }
