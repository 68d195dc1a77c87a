"""Streaming end to end: real scheduler and node processes, the real Whisper, committed speech.

Partials come while the file is still being played; the final transcript is the one whole-
utterance mode gives; a node killed mid-utterance still ends it in exactly one final result;
a room listener sees the speaker's partials."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import numpy as np
from lingua_client import LocalCluster, SessionConnection
from lingua_node.testing.wer import word_edits
from lingua_protocol import (
    AsrPartial,
    Message,
    RoomCreate,
    RoomCreateAck,
    RoomJoin,
    RoomMembers,
    SessionInit,
    TranslationResult,
    float32_to_pcm16,
    read_wav,
)

from .e2e_support import SPEECH, send_files

BLOCK_S = 0.1


def sentences() -> list[dict[str, str]]:
    return [s for s in json.loads((SPEECH / "sentences.json").read_text()) if s["lang"] == "en"]


def seconds(name: str) -> float:
    audio, rate = read_wav(SPEECH / name)
    return len(audio) / rate


async def test_partials_come_while_the_file_plays_and_the_final_is_the_whole_mode_text(
    cluster: LocalCluster,
) -> None:
    cluster.start_scheduler()
    cluster.wait_node_ready(cluster.start_node("node", max_jobs=2))
    items = sentences()
    files = [SPEECH / s["file"] for s in items]
    code, whole = await send_files(cluster.session_url, files, "en", "en", use_tts=False)
    assert code == 0, whole
    code, rows = await send_files(
        cluster.session_url, files, "en", "en", use_tts=False, stream=True, sequential=True
    )
    assert code == 0, rows
    finals = [r for r in rows if not r.get("partial")]
    partials = [r for r in rows if r.get("partial")]
    assert [r["utterance_index"] for r in finals] == list(range(len(items)))
    for item, w, f in zip(items, whole, finals, strict=True):
        mine = [p for p in partials if p["utterance_index"] == f["utterance_index"]]
        # the first partial came while the clip was still being played in real time
        assert mine, f"no partial for {item['file']}"
        assert mine[0]["t_ms"] < seconds(item["file"]) * 1000, (item["file"], mine[0])
        revisions = [p["revision"] for p in mine]
        assert revisions == sorted(set(revisions)), revisions  # never a stale one shown
        for p in mine:
            assert p["text"].startswith(p["stable_text"].rstrip()), p
        edits, _ = word_edits(w["text_asr"], f["text_asr"])
        assert edits <= 1, (item["file"], w["text_asr"], f["text_asr"])


async def test_a_node_killed_mid_stream_still_gives_one_final_result(
    cluster: LocalCluster,
) -> None:
    cluster.start_scheduler(ack_timeout_s=5, job_timeout_s=60)
    a, b = cluster.start_node("a"), cluster.start_node("b")
    procs = {cluster.wait_node_ready(a): a, cluster.wait_node_ready(b): b}
    got: list[Message] = []
    conn = SessionConnection(
        cluster.session_url,
        SessionInit(src_lang="en", tgt_lang="en", enable_streaming_asr=True),
        got.append,
    )
    ack = await conn.start()
    assert ack.streaming
    clips = [read_wav(SPEECH / n)[0] for n in ("river.wav", "weather.wav")]
    pcm = float32_to_pcm16(np.concatenate(clips))
    block = int(16000 * BLOCK_S) * 2
    index = await conn.open_stream()
    victim: str | None = None
    for at in range(0, len(pcm), block):
        conn.append_stream(index, pcm[at : at + block])
        await asyncio.sleep(BLOCK_S)
        if victim is None and any(isinstance(m, AsrPartial) for m in got):
            victim = next(m.node_id for m in got if isinstance(m, AsrPartial))
            assert victim in procs
            procs[victim].kill()  # SIGKILL while the speaker is still talking
    assert victim is not None, "no partial before the end of the audio"
    await conn.close_stream(index)
    await conn.drained(120)
    finals = [m for m in got if isinstance(m, TranslationResult)]
    assert len(finals) == 1, got
    assert finals[0].utterance_index == index
    assert finals[0].node_id != victim
    assert "river" in (finals[0].text_asr or "").lower()
    assert "sunny" in (finals[0].text_asr or "").lower()
    await conn.close()


async def test_a_room_listener_sees_the_speakers_partials(cluster: LocalCluster) -> None:
    cluster.start_scheduler()
    cluster.wait_node_ready(cluster.start_node("node", max_jobs=2))
    heard: dict[str, list[Message]] = {"speaker": [], "listener": []}
    conns: dict[str, SessionConnection] = {}
    for who in heard:
        conn = SessionConnection(
            cluster.session_url,
            SessionInit(src_lang="en", tgt_lang="en", enable_streaming_asr=True),
            heard[who].append,
        )
        await conn.start()
        conns[who] = conn
    await conns["speaker"].send(RoomCreate(display_name="Ana", preferred_lang="en"))
    code = await _wait(heard["speaker"], RoomCreateAck)
    await conns["listener"].send(RoomJoin(room_code=code.room_code, display_name="Bo"))
    await _wait(heard["listener"], RoomMembers)
    pcm = float32_to_pcm16(read_wav(SPEECH / "river.wav")[0])
    block = int(16000 * BLOCK_S) * 2
    index = await conns["speaker"].open_stream()
    for at in range(0, len(pcm), block):
        conns["speaker"].append_stream(index, pcm[at : at + block])
        await asyncio.sleep(BLOCK_S)
    await conns["speaker"].close_stream(index)
    await conns["speaker"].drained(120)
    final = await _wait(heard["listener"], TranslationResult)
    partials = [m for m in heard["listener"] if isinstance(m, AsrPartial)]
    assert partials, heard["listener"]
    speaker_id = conns["speaker"].session_id
    assert all(p.room_code == code.room_code for p in partials)
    assert all(p.speaker_session_id == speaker_id for p in partials)
    assert "river" in (final.text_asr or "").lower()
    for conn in conns.values():
        await conn.close()


async def _wait(inbox: list[Message], kind: type[Any], timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for m in inbox:
            if isinstance(m, kind):
                return m
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no {kind.__name__} in {inbox}")
