"""An instance of a scheduler cluster dies (SIGKILL) mid-session: the real client connection
code resumes the session on the other instance and gets every result, in order, exactly once.
Real scheduler processes and a real redis-server; the node is a scripted test double (not end
to end: no models)."""

from __future__ import annotations

import asyncio

import pytest
from lingua_client import SessionConnection
from lingua_protocol import Message, SessionInit, TranslationResult
from lingua_scheduler.testing import ScriptedNode
from lingua_scheduler.testing.processes import SchedulerProcess
from lingua_scheduler.testing.redis_server import redis_available, running_redis

pytestmark = pytest.mark.skipif(not redis_available(), reason="needs redis-server")

SILENCE = b"\x00\x00" * 1600
ADMIN = "operator-token-for-tests"


class Inbox:
    """What the client delivers, with an event per delivery to wait on."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._changed = asyncio.Event()

    def __call__(self, message: Message) -> None:
        self.messages.append(message)
        self._changed.set()

    def indexes(self) -> list[int]:
        return [m.utterance_index for m in self.messages if isinstance(m, TranslationResult)]

    async def until_results(self, count: int, timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.indexes()) < count:
                self._changed.clear()
                await self._changed.wait()


async def test_session_resumes_on_another_instance_after_sigkill_each_result_once() -> None:
    async with running_redis() as redis:
        a, b = SchedulerProcess(redis.url), SchedulerProcess(redis.url)
        await a.start()
        await b.start()
        node = ScriptedNode(b.node_url, "survivor", pairs=[("en", "en")], hold=True, max_jobs=16)
        inbox = Inbox()
        conn = SessionConnection(
            f"{a.session_url},{b.session_url}",
            SessionInit(src_lang="en", tgt_lang="en"),
            inbox,
            reconnect_min_s=0.05,
            reconnect_max_s=0.2,
        )
        try:
            await node.start()
            await a.wait_ready_nodes(1)
            await conn.start()
            assert conn.url == a.session_url
            session_id = conn.session_id
            for _ in range(5):
                await conn.send_audio(SILENCE)
            jobs = await node.wait_jobs(5)
            await node.release(jobs[:2])
            await inbox.until_results(2)
            await a.kill()  # 2, 3 and 4 are still running on b's node for a dead instance
            # The client resumes on b and sends 2, 3 and 4 again; b assigns them anew.
            await node.wait_jobs(8, timeout_s=20)
            await node.release()  # the old jobs' results go to a's inbox and are never read
            await conn.drained(20)
            assert conn.url == b.session_url
            assert conn.session_id == session_id  # resumed on b, not a new session
            assert inbox.indexes() == [0, 1, 2, 3, 4]
            assert len(node.jobs) == 8  # 2, 3 and 4 ran again, nothing more
        finally:
            await conn.close()
            await node.close()
            await a.stop()
            await b.stop()


async def test_results_held_for_an_absent_client_survive_the_instance_that_held_them() -> None:
    """The client is away when its results arrive; its instance dies while holding them: the
    client resumes on another instance and gets them from Redis, nothing computed again."""
    import redis.asyncio as aioredis
    from lingua_scheduler.testing import ScriptedClient

    async with running_redis() as redis:
        a, b = SchedulerProcess(redis.url, admin_token=ADMIN), SchedulerProcess(redis.url)
        await a.start()
        await b.start()
        node = ScriptedNode(b.node_url, "survivor", pairs=[("en", "en")], hold=True)
        client = ScriptedClient(a.session_url, "en", "en")
        store = aioredis.from_url(redis.url)
        try:
            await node.start()
            await a.wait_ready_nodes(1)
            await client.start()
            token = client.resume_token
            assert token is not None
            for index in range(3):
                await client.utter(index)
            await node.wait_jobs(3)
            await client.close()  # away, within the resume grace
            # Only what arrives once A has seen the client leave is held (a result that comes
            # before goes to the closing connection; the client would send that one again).
            await a.wait_clients_gone(ADMIN)
            await node.release()
            async with asyncio.timeout(10):
                while await store.llen(f"lingua:held:{token}") < 3:  # noqa: ASYNC110  (Redis)
                    await asyncio.sleep(0.02)
            await a.kill()
            back = ScriptedClient(b.session_url, "en", "en", resume_token=token)
            ack = await back.start()
            assert ack.type == "session_init_ack"
            assert ack.session_id == client.session_id  # type: ignore[attr-defined]
            got = await back.recv_until(3, ("translation_result",))
            assert [m.utterance_index for m in got] == [0, 1, 2]  # type: ignore[attr-defined]
            assert len(node.jobs) == 3  # nothing ran twice
            await back.close()
            async with asyncio.timeout(10):  # the dead instance leaves the cluster's list
                while await store.scard("lingua:instances") > 1:  # noqa: ASYNC110  (Redis)
                    await asyncio.sleep(0.05)
        finally:
            await store.aclose()
            await node.close()
            await a.stop()
            await b.stop()
