"""Integration: streamed utterances through a real scheduler server over real WebSockets,
with the scripted test-double node (`ScriptedNode(streams=...)`) and client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from lingua_protocol import AsrPartial, Message
from lingua_scheduler.testing import Running, ScriptedClient, running_scheduler

PIECE = b"\x01\x00" * 1600  # 0.1 s of 16 kHz pcm16


@pytest.fixture
async def sched() -> AsyncIterator[Running]:
    async with running_scheduler(sticky_nodes=False) as running:
        yield running


async def _until(client: ScriptedClient, kind: str, timeout_s: float = 5.0) -> Message:
    """The next message of `kind`, failing on any final message of another kind first."""
    while True:
        message = await client.recv(timeout_s)
        if message.type == kind:
            return message
        assert message.type not in ("translation_result", "error"), message


async def test_a_streamed_utterance_gets_partials_then_exactly_one_final(sched: Running) -> None:
    node = await sched.node("streamer", streams=2)
    client = await sched.client(enable_streaming_asr=True, partial_update_interval_ms=250)
    assert client.ack is not None
    assert client.ack.streaming is True  # type: ignore[attr-defined]
    assert client.ack.partial_update_interval_ms == 250  # type: ignore[attr-defined]
    await client.chunk(0, 0, PIECE)
    first = await _until(client, "asr_partial")
    assert isinstance(first, AsrPartial)
    assert (first.revision, first.text, first.audio_ms) == (1, "partial:0:0", 100)
    await client.chunk(0, 1, PIECE)
    second = await _until(client, "asr_partial")
    assert isinstance(second, AsrPartial)
    assert second.revision == 2
    await client.chunk(0, 2, b"", is_final=True)
    rest = await client.recv_until(1, ("translation_result", "error"))
    assert [m.type for m in rest] == ["translation_result"]
    [job] = node.jobs
    assert job.stream
    assert job.partial_update_interval_ms == 250
    assert bytes(node.stream_audio[job.job_id]) == PIECE * 2
    await node.close()
    await client.close()


async def test_a_node_killed_mid_utterance_is_replaced_and_one_final_comes(
    sched: Running,
) -> None:
    first = await sched.node("first", streams=1)
    client = await sched.client(enable_streaming_asr=True)
    await client.chunk(0, 0, PIECE)
    await client.chunk(0, 1, PIECE)
    await first.wait_received(lambda m: m.type == "job_audio")
    second = await sched.node("second", streams=1)
    await first.kill()
    [again] = await second.wait_jobs(1)
    assert again.stream
    assert not again.stream_closed
    assert again.next_seq == 2
    assert again.audio.to_bytes() == PIECE * 2
    await client.chunk(0, 2, PIECE, is_final=True)
    finals = await client.recv_until(1, ("translation_result", "error"))
    assert finals[0].type == "translation_result"
    assert finals[0].node_id == "second"  # type: ignore[attr-defined]
    assert bytes(second.stream_audio[again.job_id]) == PIECE * 3
    await second.close()
    await client.close()


async def test_without_a_streaming_node_the_stream_runs_whole_without_partials(
    sched: Running,
) -> None:
    node = await sched.node("plain")
    client = await sched.client(enable_streaming_asr=True)
    for seq in range(3):
        await client.chunk(0, seq, PIECE, is_final=seq == 2)
    got = await client.recv_until(1, ("translation_result", "error", "asr_partial"))
    assert [m.type for m in got] == ["translation_result"]
    [job] = node.jobs
    assert not job.stream
    assert job.audio.to_bytes() == PIECE * 3
    await node.close()
    await client.close()


async def test_chunks_travel_as_binary_frames_when_both_sides_negotiated_them(
    sched: Running,
) -> None:
    node = await sched.node("streamer", streams=1, binary=True)
    client = await sched.client(enable_streaming_asr=True, binary_audio=True)
    await client.chunk(0, 0, PIECE)
    await client.chunk(0, 1, PIECE[::-1], is_final=True)
    finals = await client.recv_until(1, ("translation_result", "error"))
    assert finals[0].type == "translation_result"
    [job] = node.jobs
    assert bytes(node.stream_audio[job.job_id]) == PIECE + PIECE[::-1]
    await node.close()
    await client.close()
