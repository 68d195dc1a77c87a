"""Integration: a real scheduler server, real WebSocket connections, scripted test doubles."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from lingua_scheduler.testing import (
    REFERENCE_REGISTER,
    Running,
    ScriptedNode,
    running_scheduler,
)
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


@pytest.fixture
async def sched() -> AsyncIterator[Running]:
    async with running_scheduler(
        sticky_nodes=False, utterance_burst=200, utterances_per_s=100
    ) as running:
        yield running


async def test_an_utterance_is_dispatched_and_answered(sched: Running) -> None:
    node = await sched.node("a")
    assert node.ack_message is not None
    assert node.ack_message.status == "ready"
    client = await sched.client()
    await client.utter(0)
    result = await client.recv()
    assert result.type == "translation_result"
    assert (result.text_asr, result.text_translated, result.node_id) == ("asr:0", "zh:0", "a")


async def test_the_reference_node_register_serves_both_directions(sched: Running) -> None:
    node = await sched.node("test-node-python-1", register=REFERENCE_REGISTER)
    assert node.ack_message.status == "ready"
    client = await sched.client("en", "zh")
    pipeline = {"use_asr": True, "use_nmt": True, "use_tts": True}
    from lingua_protocol import PipelineConfig

    await client.utter(
        0, src_lang="en", tgt_lang="zh", pipeline=PipelineConfig(**pipeline), audio_format="wav"
    )
    await client.utter(
        1, src_lang="zh", tgt_lang="en", pipeline=PipelineConfig(**pipeline), audio_format="wav"
    )
    results = await client.recv_until(2, ("translation_result", "error"))
    assert [r.type for r in results] == ["translation_result", "translation_result"]
    assert [(j.src_lang, j.tgt_lang) for j in node.jobs] == [("en", "zh"), ("zh", "en")]


async def test_thirty_jobs_over_three_nodes_spread_by_in_flight(sched: Running) -> None:
    nodes = [await sched.node(n, hold=True, max_jobs=20) for n in "abc"]
    client = await sched.client()
    for i in range(30):
        await client.utter(i)
    async with asyncio.timeout(10):
        while sum(len(n.jobs) for n in nodes) < 30:
            await asyncio.gather(
                *(n.wait_jobs(len(n.jobs) + 1, 0.2) for n in nodes), return_exceptions=True
            )
    assert [len(n.jobs) for n in nodes] == [10, 10, 10]
    for n in nodes:
        await n.release()
    results = await client.recv_until(30, ("translation_result",))
    assert [r.utterance_index for r in results] == list(range(30))


async def test_results_returned_out_of_order_arrive_in_order(sched: Running) -> None:
    node = await sched.node("a", hold=True, max_jobs=10)
    client = await sched.client()
    for i in range(5):
        await client.utter(i)
    jobs = await node.wait_jobs(5)
    await node.release(reversed(list(jobs)))
    results = await client.recv_until(5, ("translation_result",))
    assert [r.utterance_index for r in results] == [0, 1, 2, 3, 4]


async def test_a_node_killed_mid_job_does_not_lose_the_utterance(sched: Running) -> None:
    doomed = await sched.node("doomed", hold=True)
    client = await sched.client()
    await client.utter(0)
    await doomed.wait_jobs(1)
    survivor = await sched.node("survivor")
    await doomed.kill()
    result = await client.recv()
    assert result.type == "translation_result"
    assert result.node_id == "survivor"
    assert len(survivor.jobs) == 1
    assert result.utterance_index == 0


async def test_an_unacked_job_is_reassigned() -> None:
    async with running_scheduler(ack_timeout_s=0.3) as sched:
        silent = await sched.node("silent", ack=False, answer=False)
        client = await sched.client()
        await client.utter(0)
        await silent.wait_jobs(1)
        await sched.node("helper")
        result = await client.recv()
        assert result.node_id == "helper"
        cancel = await silent.wait_received(lambda m: m.type == "job_cancel")
        assert cancel.job_id == silent.jobs[0].job_id  # type: ignore[attr-defined]


async def test_a_gap_becomes_missing_result() -> None:
    async with running_scheduler(result_gap_timeout_s=0.3, job_timeout_s=60) as sched:
        await sched.node("a")
        client = await sched.client()
        await client.utter(0)
        await client.utter(2)  # index 1 never sent
        got = await client.recv_until(3, ("missing_result", "translation_result"))
        assert [(m.type, m.utterance_index) for m in got] == [
            ("translation_result", 0),
            ("missing_result", 1),
            ("translation_result", 2),
        ]


async def test_pairing_over_the_wire(sched: Running) -> None:
    private = await sched.node("private", accept_public=False)
    from lingua_protocol import PairingCodeRequest

    await private.ws.send(PairingCodeRequest(node_id="private").to_json())
    code = (await private.next_message()).code
    client = await sched.client(pairing_code=code)
    assert client.ack.assigned_node_id == "private"
    await client.utter(0)
    assert (await client.recv()).node_id == "private"
    stranger = await sched.client()
    await stranger.utter(0)
    err = await stranger.recv()
    assert err.type == "error"
    assert err.code == "NO_AVAILABLE_NODE"


async def test_room_with_three_members_in_two_languages(sched: Running) -> None:
    from lingua_protocol import RoomCreate, RoomJoin

    node = await sched.node("a", pairs=(("en", "zh"), ("en", "fr"), ("zh", "en"), ("fr", "en")))
    ana = await sched.client("en", "zh")
    await ana.send_raw(RoomCreate(display_name="Ana", preferred_lang="en").to_json())
    code = (await ana.recv()).room_code
    members = []
    for name, lang in (("Li", "zh"), ("Marie", "fr"), ("Wang", "zh")):
        c = await sched.client(lang, "en")
        await c.send_raw(RoomJoin(room_code=code, display_name=name, preferred_lang=lang).to_json())
        members.append((c, lang))
    await ana.utter(0)
    speaker = await ana.recv_until(1, ("translation_result",))
    assert speaker[0].text_asr == "asr:0"
    for c, lang in members:
        got = await c.recv_until(1, ("translation_result",))
        assert got[0].tgt_lang == lang
        assert got[0].speaker_display_name == "Ana"
    assert sorted(j.tgt_lang for j in node.jobs) == ["fr", "zh"]


async def test_session_resume_delivers_every_result_once(sched: Running) -> None:
    node = await sched.node("a", hold=True)
    client = await sched.client()
    for i in range(3):
        await client.utter(i)
    jobs = await node.wait_jobs(3)
    await node.release([jobs[0]])
    assert (await client.recv()).utterance_index == 0
    await client.close()
    await node.release([jobs[1]])  # produced while the client is away
    again = await sched.client(resume_token=client.resume_token, last_received_index=0)
    assert again.ack.resumed is True
    assert again.session_id == client.session_id
    assert again.ack.last_delivered_index == 1
    await again.utter(2)  # resend of the one still in flight: deduplicated, not rerun
    await node.release()
    got = await again.recv_until(2, ("translation_result",))
    assert [m.utterance_index for m in got] == [1, 2]
    await again.utter(3)
    await node.wait_jobs(4)
    await node.release()
    nxt = await again.recv_until(1, ("translation_result",))
    assert nxt[0].utterance_index == 3
    assert len(node.jobs) == 4


async def test_resume_replays_what_the_old_connection_lost(sched: Running) -> None:
    await sched.node("a")
    client = await sched.client()
    await client.utter(0)
    await client.recv()
    await client.close()
    again = await sched.client(resume_token=client.resume_token)  # says it has nothing
    replayed = await again.recv()
    assert replayed.type == "translation_result"
    assert replayed.utterance_index == 0


async def test_binary_frames_are_relayed_raw(sched: Running) -> None:
    node = await sched.node("a", binary=True, tts_bytes=3200)
    client = await sched.client(binary_audio=True)
    audio = bytes(range(256)) * 10
    await client.utter(0, audio=audio)
    result = await client.recv()
    assert node.jobs[0].audio.is_raw
    assert node.jobs[0].audio.to_bytes() == audio
    assert result.tts_audio.is_raw
    assert len(result.tts_audio) == 3200


async def test_a_client_that_stops_reading_still_gets_every_result_in_order(
    sched: Running,
) -> None:
    # 32 results (the flow-control window) of ~350 KB each are far more than the socket
    # buffers hold while the client does not read: the rest waits in the scheduler's outbox,
    # behind what was written at once (within its byte budget, so the client is not closed).
    node = await sched.node("a", tts_bytes=256 * 1024, max_jobs=64)
    client = await sched.client(max_queue=1)
    for i in range(32):
        await client.utter(i)
    await node.wait_answered(32)
    await node.sync()  # every result is in the scheduler before the client reads any of them
    got = await client.recv_until(32, ("translation_result", "error"), timeout_s=30)
    assert [(m.type, m.utterance_index) for m in got] == [
        ("translation_result", i) for i in range(32)
    ]
    assert all(len(m.tts_audio) == 256 * 1024 for m in got)
    assert sched.server.metrics.slow_peer_sends > 0


async def test_a_clients_audio_is_forwarded_unchecked_and_a_nodes_is_checked(
    sched: Running,
) -> None:
    # Client audio: whoever decodes it (the node) checks its base64; the scheduler only makes
    # sure it can be forwarded as it is. Large (spliced) and small (fully parsed) alike.
    node = await sched.node("a")
    client = await sched.client()
    assert client.session_id is not None
    # the last one holds a control character, which must be escaped again on the way out
    for index, bad in enumerate(("@@not base64@@", "@" * 20_000, "tab\there")):
        raw = {"type": "utterance", "session_id": client.session_id, "utterance_index": index}
        await client.send_raw(json.dumps({**raw, "audio": bad}))
        (job,) = (await node.wait_jobs(index + 1))[index:]
        assert job.audio.to_base64() == bad
        with pytest.raises(ValueError, match="base64"):
            job.audio.to_bytes()
    # Node audio goes to clients, so the scheduler checks it in full.
    assert node.ws is not None
    result = {
        "type": "job_result",
        "job_id": node.jobs[0].job_id,
        "node_id": "a",
        "session_id": client.session_id,
        "utterance_index": 0,
        "success": True,
        "tts_audio": "@@not base64@@",
    }
    await node.ws.send(json.dumps(result))
    error = await node.next_message()
    assert error.type == "error"
    assert error.code == "INVALID_MESSAGE"
    assert error.details["field"] == "tts_audio"  # type: ignore[attr-defined]


async def test_bad_node_token_is_refused() -> None:
    async with running_scheduler(node_token="right") as sched:
        node = ScriptedNode(sched.node_url, "n", token="wrong")
        err = await node.start()
        assert err.type == "error"
        assert err.code == "UNAUTHORIZED"
        assert node.ws is not None
        async with asyncio.timeout(2):
            await node.ws.wait_closed()
        good = ScriptedNode(sched.node_url, "m", token="right")
        assert (await good.start()).status == "ready"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ("{not json", None),
        ('{"type": "warp_drive"}', "type"),
        ('{"type": "utterance", "session_id": "x", "utterance_index": 0}', "audio"),
    ],
)
async def test_malformed_messages_get_errors_and_the_session_lives(
    sched: Running, payload: str, field: str | None
) -> None:
    await sched.node("a")
    client = await sched.client()
    await client.send_raw(payload)
    err = await client.recv()
    assert err.type == "error"
    assert err.code == "INVALID_MESSAGE"
    if field:
        assert err.details["field"] == field
    await client.utter(0)
    assert (await client.recv()).type == "translation_result"


async def test_oversized_frame_is_message_too_large_and_closes_1009() -> None:
    async with running_scheduler(max_message_bytes=64 * 1024) as sched:
        other = await sched.client()
        async with connect(sched.session_url, max_size=None) as ws:
            await ws.send(b"\x00" * (100 * 1024))
            err = json.loads(await ws.recv())
            assert err["code"] == "MESSAGE_TOO_LARGE"
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd.code == 1009
        await other.send_raw(
            json.dumps({"type": "client_heartbeat", "session_id": other.session_id, "timestamp": 1})
        )
        assert (await other.recv()).type == "server_heartbeat"


async def test_http_endpoints(sched: Running) -> None:
    await sched.node("a")
    client = await sched.client()
    await client.utter(0)
    assert (await client.recv()).type == "translation_result"
    async with httpx.AsyncClient(base_url=sched.http) as http:
        assert (await http.get("/health")).json() == {"status": "ok"}
        cluster = (await http.get("/api/v1/cluster")).json()
        assert cluster["nodes_by_status"] == {"ready": 1}
        assert cluster["ready_nodes"] == 1
        assert {"src": "en", "tgt": "zh"} in cluster["nodes"][0]["language_pairs"]
        metrics = (await http.get("/metrics")).text
        assert 'lingua_nodes{status="ready"} 1.0' in metrics
        assert 'lingua_jobs_total{outcome="success"} 1.0' in metrics
        assert "lingua_dispatch_latency_seconds_count 1.0" in metrics
        assert 'lingua_dispatch_latency_seconds_bucket{le="+Inf"} 1.0' in metrics
        assert "lingua_slow_peer_sends_total 0.0" in metrics


OPERATOR = {"Authorization": "Bearer op-token"}


async def test_operator_drains_a_node_over_the_admin_endpoint() -> None:
    from lingua_protocol import NodeControl

    async with running_scheduler(admin_token="op-token") as sched:
        node = await sched.node("a")
        admin_url = sched.node_url.replace("/ws/node", "/ws/admin")
        async with connect(admin_url, additional_headers=OPERATOR) as admin:
            command = NodeControl(command="drain", node_id="a")
            await admin.send(command.to_json())
            with pytest.raises(ConnectionClosed):
                await admin.recv()
        await node.wait_received(lambda m: m.type == "node_control")
        async with httpx.AsyncClient() as http:
            cluster = (await http.get(f"{sched.http}/api/v1/cluster", headers=OPERATOR)).json()
        assert cluster["nodes"][0]["status"] == "draining"
        client = await sched.client()
        await client.utter(0)
        err = await client.recv()
        assert err.type == "error"
        assert err.code == "NO_AVAILABLE_NODE"


async def test_public_language_summary_lists_what_ready_nodes_serve(sched: Running) -> None:
    async with httpx.AsyncClient(base_url=sched.http) as http:
        empty = await http.get("/api/v1/languages")
        assert empty.json()["ready_nodes"] == 0
        assert empty.json()["pairs"] == []
        await sched.node("a")
        response = await http.get("/api/v1/languages")
    body = response.json()
    assert response.headers["access-control-allow-origin"] == "*"
    assert body["ready_nodes"] == 1
    assert {"src": "en", "tgt": "zh"} in body["pairs"]
    assert "en" in body["src_langs"]
    assert "zh" in body["tgt_langs"]
    assert "node_id" not in response.text
    assert "session" not in response.text
