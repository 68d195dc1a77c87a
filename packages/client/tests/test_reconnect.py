"""The scheduler connection drops mid-session: the client resumes and gets every result once."""

from __future__ import annotations

import asyncio

from client_support import Sched
from lingua_client.connection import SessionConnection
from lingua_protocol import Message, SessionInit, TranslationResult


async def test_a_dropped_connection_resumes_and_loses_nothing(sched: Sched) -> None:
    node = await sched.node(hold=True)
    got: list[Message] = []
    conn = SessionConnection(
        sched.session_url,
        SessionInit(src_lang="en", tgt_lang="en"),
        got.append,
        reconnect_min_s=0.05,
        reconnect_max_s=0.1,
    )
    await conn.start()
    for _ in range(4):
        await conn.send_audio(b"\x00\x00" * 1600)
    jobs = await node.wait_jobs(4)
    await node.release(jobs[:1])
    async with asyncio.timeout(5):
        while not got:
            await asyncio.sleep(0)  # let the reader take the first result
    # the line drops: the server side of the client's socket is torn down
    peer = next(p for p in sched.server.peers.values() if p.kind == "session")
    peer.ws.transport.abort()
    await node.release(jobs[1:3])  # answered while the client is away
    async with asyncio.timeout(10):
        while conn.stats.connects < 2:
            await asyncio.sleep(0.01)
    await conn.send_audio(b"\x00\x00" * 1600)  # index 4, on the new connection
    await node.wait_jobs(5)
    await node.release()
    await conn.drained(10)
    indexes = [m.utterance_index for m in got if isinstance(m, TranslationResult)]
    assert indexes == [0, 1, 2, 3, 4]
    assert len(node.jobs) == 5  # nothing was run twice
    await conn.close()
