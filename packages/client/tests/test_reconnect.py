"""The scheduler connection drops mid-session: the client resumes and gets every result once."""

from __future__ import annotations

from lingua_protocol import TranslationResult

from .client_support import SILENCE, Reports, Sched, first_answered, reconnecting_session


async def test_a_dropped_connection_resumes_and_loses_nothing(sched: Sched) -> None:
    node = await sched.node(hold=True)
    reports = Reports()
    conn = reconnecting_session(sched.session_url, reports, reconnect_max_s=0.1)
    await conn.start()
    jobs = await first_answered(conn, node, reports, 4)
    # the line drops: the server side of the client's socket is torn down
    peer = next(p for p in sched.server.peers.values() if p.kind == "session")
    peer.ws.transport.abort()
    await node.release(jobs[1:3])  # answered while the client is away
    await reports.until(lambda: conn.stats.connects >= 2, timeout_s=10)
    await conn.send_audio(SILENCE)  # index 4, on the new connection
    await node.wait_jobs(5)
    await node.release()
    await conn.drained(10)
    indexes = [m.utterance_index for m in reports.messages if isinstance(m, TranslationResult)]
    assert indexes == [0, 1, 2, 3, 4]
    assert len(node.jobs) == 5  # nothing was run twice
    await conn.close()
