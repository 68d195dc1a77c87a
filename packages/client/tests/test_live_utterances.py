"""`LiveUtterances` carrying the cutter's streaming events to a session (its core only: no
connection is opened, nothing is sent)."""

from __future__ import annotations

import numpy as np
from lingua_client._connection import SessionConnection
from lingua_client._cutter import StreamEvent
from lingua_client._live_utterances import LiveUtterances
from lingua_protocol import Error, Message, SessionInit, SessionInitAck

TENTH_S = np.full(1600, 0.25, np.float32)  # 100 ms: 3,200 bytes of pcm16


def offline_conn(shown: list[Message]) -> SessionConnection:
    init = SessionInit(src_lang="en", tgt_lang="en", enable_streaming_asr=True)
    return SessionConnection("ws://127.0.0.1:9/ws/session", init, shown.append)


async def test_a_stream_at_its_longest_is_closed_there_and_the_audio_opens_the_next() -> None:
    conn = offline_conn([])
    conn.core.max_stream_bytes = 6400  # 200 ms
    live = LiveUtterances(conn)
    assert await live.apply([StreamEvent("open", TENTH_S), StreamEvent("audio", TENTH_S)]) == [0]
    assert await live.apply([StreamEvent("audio", TENTH_S)]) == [1]
    assert not conn.core.stream_is_open(0)
    assert conn.core.stream_is_open(1)
    await live.apply([StreamEvent("close")])
    assert not conn.core.stream_is_open(1)
    assert conn.core.unanswered == 2  # nothing lost: both wait to be sent


async def test_after_an_early_error_the_rest_of_that_utterance_is_not_sent() -> None:
    shown: list[Message] = []
    conn = offline_conn(shown)
    core = conn.core
    core.opened(SessionInitAck(session_id="s1", resume_token="t", streaming=True), 0.0)
    live = LiveUtterances(conn)
    await live.apply([StreamEvent("open", TENTH_S)])
    assert len(core.utterances_to_send(0.0)) == 1
    core.received(
        Error(code="MESSAGE_TOO_LARGE", message="too long", session_id="s1", utterance_index=0),
        0.1,
    )
    assert await live.apply([StreamEvent("audio", TENTH_S)]) == []  # no new utterance
    await live.apply([StreamEvent("close")])
    assert core.utterances_to_send(0.2) == []
    assert await live.apply([StreamEvent("open", TENTH_S)]) == [1]  # the next one as usual
