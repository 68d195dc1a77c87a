"""Regression tests for the session and job side of the hardening work, each over real
WebSockets against a real `SchedulerServer` with scripted test doubles, as each finding was
seen: index jumps, bad WAV base64, room listener errors, bursts, clients that do not read."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from lingua_protocol import MAX_UTTERANCE_INDEX
from lingua_scheduler.testing import Running, ScriptedClient, running_scheduler
from websockets.exceptions import ConnectionClosed


@pytest.fixture
async def sched() -> AsyncIterator[Running]:
    async with running_scheduler(
        sticky_nodes=False, utterance_burst=200, utterances_per_s=100
    ) as running:
        yield running


def _utterance(client: ScriptedClient, index: int, **kw: Any) -> str:
    body = {
        "type": "utterance",
        "session_id": client.session_id,
        "utterance_index": index,
        "audio": "AAAA",
        "audio_format": "pcm16",
        "sample_rate": 16000,
        **kw,
    }
    return json.dumps(body)


async def test_an_index_far_ahead_is_refused_at_once_and_never_becomes_a_gap(
    sched: Running,
) -> None:
    node = await sched.node("a", hold=True)
    client = await sched.client()
    await client.utter(0)
    await node.wait_jobs(1)
    for index in (10**9, MAX_UTTERANCE_INDEX, 2**63):
        await client.send_raw(_utterance(client, index))
        error = await client.recv()
        assert (error.type, error.code) == ("error", "INVALID_MESSAGE")
        assert error.details == {"field": "utterance_index"}
    assert len(node.jobs) == 1  # none of them was accepted
    await client.utter(1)  # the next index is still served, in order
    await node.wait_jobs(2)
    await node.release()
    results = await client.recv_until(2, ("translation_result", "missing_result", "error"))
    assert [(m.type, m.utterance_index) for m in results] == [
        ("translation_result", 0),
        ("translation_result", 1),
    ]


async def test_wav_with_invalid_base64_is_refused_for_its_index_and_the_session_goes_on(
    sched: Running,
) -> None:
    await sched.node("a")
    client = await sched.client()
    await client.send_raw(_utterance(client, 0, audio="abc", audio_format="wav"))
    error = await client.recv()
    assert (error.type, error.code, error.utterance_index) == ("error", "AUDIO_DECODE_FAILED", 0)
    await client.utter(1)
    result = await client.recv()
    assert (result.type, result.utterance_index) == ("translation_result", 1)


async def test_a_listener_gets_a_room_error_that_is_not_an_answer_to_its_own_index(
    sched: Running,
) -> None:
    await sched.node("a", pairs=[("en", "zh")])
    speaker = await sched.client("en", "zh")
    listener = await sched.client("en", "zh")
    await speaker.send_raw(json.dumps({"type": "room_create", "display_name": "Ana"}))
    code = (await speaker.recv()).room_code
    await listener.send_raw(
        json.dumps({"type": "room_join", "room_code": code, "preferred_lang": "fr"})
    )
    await speaker.recv_until(2, ("room_members",))
    await listener.recv_until(1, ("room_members",))
    await speaker.utter(0)  # nobody serves en->fr; the speaker's own en->zh is served
    own = await speaker.recv()
    assert (own.type, own.utterance_index, own.tgt_lang) == ("translation_result", 0, "zh")
    copy = await listener.recv()
    assert copy.type == "room_error"
    assert (copy.speaker_session_id, copy.session_id) == (speaker.session_id, listener.session_id)
    assert (copy.utterance_index, copy.code, copy.room_code) == (0, "NO_AVAILABLE_NODE", code)
    # A different message type from `error`: no client can take it for the answer to its own 0.


async def test_ten_utterances_to_one_slow_node_all_get_results() -> None:
    async with running_scheduler(queue_timeout_s=0.5, utterance_burst=20) as sched:
        node = await sched.node("slow", hold=True, max_jobs=1)
        client = await sched.client()
        for i in range(10):
            await client.utter(i)
        for done in range(10):
            await node.wait_jobs(done + 1)
            await asyncio.sleep(0.15)  # the node is slow: ten jobs take 1.5 s, 3x the timeout
            await node.release()
        results = await client.recv_until(10, ("translation_result", "error"))
        assert [(m.type, m.utterance_index) for m in results] == [
            ("translation_result", i) for i in range(10)
        ]


async def test_the_ack_states_the_flow_control_window_and_beyond_it_is_rate_limited() -> None:
    async with running_scheduler(max_in_flight_utterances=3, max_in_flight_bytes=10_000) as sched:
        node = await sched.node("a", hold=True, max_jobs=8)
        client = await sched.client()
        ack = client.ack
        assert (ack.max_in_flight_utterances, ack.max_in_flight_bytes) == (3, 10_000)
        for i in range(3):
            await client.utter(i, audio=b"\x00" * 100)
        await client.utter(3, audio=b"\x00" * 100)  # a fourth unanswered one
        refused = await client.recv()
        assert (refused.type, refused.code, refused.utterance_index) == ("error", "RATE_LIMITED", 3)
        await node.wait_jobs(3)
        await node.release()
        await client.recv_until(3, ("translation_result",))
        await client.utter(3, audio=b"\x00" * 20_000)  # alone over the byte window
        refused = await client.recv()
        assert (refused.code, refused.utterance_index) == ("RATE_LIMITED", 3)
        await client.utter(3, audio=b"\x00" * 100)  # refused, so never a gap: it is sent again
        await node.wait_jobs(4)
        await node.release()
        result = await client.recv()
        assert (result.type, result.utterance_index) == ("translation_result", 3)


async def test_a_client_that_does_not_read_is_closed_at_its_outbox_byte_budget() -> None:
    async with running_scheduler(peer_outbox_bytes=2 * 1024 * 1024, utterance_burst=100) as sched:
        node = await sched.node("a", tts_bytes=512 * 1024, max_jobs=64)
        client = await sched.client(max_queue=1)
        for i in range(32):
            await client.utter(i)
        await node.wait_answered(32, timeout_s=10)
        await node.sync()  # every result is in the scheduler before the client reads one
        assert sched.server.core.counters["jobs_succeeded"] == 32
        closed: ConnectionClosed | None = None
        try:
            await client.recv_until(32, ("translation_result",), timeout_s=10)
        except ConnectionClosed as exc:
            closed = exc
        assert closed is not None
        assert closed.rcvd is not None
        assert (closed.rcvd.code, closed.rcvd.reason) == (1013, "too slow")
        assert sched.server.metrics.slow_peers_closed == 1
