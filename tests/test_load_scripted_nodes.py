"""Load over real sockets, in one process: the real client connection code against the real
scheduler server, with three scripted test-double nodes (so it runs in seconds without models).
Not end to end: the nodes are doubles; `tests/e2e` runs real processes and real models."""

from __future__ import annotations

import asyncio

from lingua_client import SessionConnection
from lingua_protocol import Message, SessionInit, TranslationResult
from lingua_scheduler.testing import ScriptedNode, running_scheduler

SESSIONS = 50
UTTERANCES = 4


async def test_fifty_sessions_four_utterances_three_nodes_each_answered_once() -> None:
    async with running_scheduler(utterances_per_s=100, utterance_burst=100) as sched:
        nodes = [
            ScriptedNode(sched.node_url, f"double-{i}", pairs=[("en", "en")], max_jobs=8)
            for i in range(3)
        ]
        for node in nodes:
            await node.start()
        inboxes: list[list[Message]] = [[] for _ in range(SESSIONS)]
        conns = [
            SessionConnection(
                sched.session_url, SessionInit(src_lang="en", tgt_lang="en"), inbox.append
            )
            for inbox in inboxes
        ]
        await asyncio.gather(*(c.start() for c in conns))

        async def speak(conn: SessionConnection) -> None:
            for _ in range(UTTERANCES):
                await conn.send_audio(b"\x01\x00" * 16000)
            await conn.drained(120)

        await asyncio.gather(*(speak(c) for c in conns))
        for inbox in inboxes:
            finals = [m for m in inbox if isinstance(m, TranslationResult)]
            assert [m.utterance_index for m in finals] == list(range(UTTERANCES))
        assert sum(len(n.jobs) for n in nodes) == SESSIONS * UTTERANCES
        assert all(len(n.jobs) > 20 for n in nodes)  # spread over the three
        for conn in conns:
            await conn.close()
        for node in nodes:
            await node.close()
