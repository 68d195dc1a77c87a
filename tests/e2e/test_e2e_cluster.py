"""Failover, live model install, rooms, pairing: real scheduler, real nodes, real models."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import numpy as np
from lingua_client import LocalCluster, Proc, SessionConnection
from lingua_protocol import (
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

from .e2e_support import (
    SPEECH,
    install_from_hub,
    models_with_whisper,
    publish_tiny_nmt,
    send_files,
)


def wait_for(check, timeout_s: float = 60.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def pcm(name: str) -> bytes:
    return float32_to_pcm16(read_wav(SPEECH / name)[0])


async def test_a_node_killed_mid_job_loses_nothing(cluster: LocalCluster) -> None:
    cluster.start_scheduler(ack_timeout_s=5, job_timeout_s=60, queue_timeout_s=120)
    a, b = cluster.start_node("a", max_jobs=2), cluster.start_node("b", max_jobs=2)
    ids = {cluster.wait_node_ready(a): a, cluster.wait_node_ready(b): b}
    got: list[Message] = []
    conn = SessionConnection(
        cluster.session_url, SessionInit(src_lang="en", tgt_lang="en"), got.append
    )
    await conn.start()
    clips = [read_wav(SPEECH / n)[0] for n in ("river.wav", "languages.wav", "train.wav")]
    long_speech = float32_to_pcm16(np.concatenate(clips * 3))  # ~40 s: seconds of work
    await conn.send_audio(long_speech)

    def busy_node() -> str | None:
        for node in cluster.cluster()["nodes"]:
            if node["in_flight_jobs"]:
                return str(node["node_id"])
        return None

    await asyncio.to_thread(wait_for, lambda: busy_node() is not None, 30, "job dispatched")
    victim_id = busy_node()
    assert victim_id is not None
    victim: Proc = ids[victim_id]
    victim.kill()  # SIGKILL mid-job
    await conn.send_audio(pcm("weather.wav"))
    await conn.send_audio(pcm("report.wav"))
    await conn.drained(240)
    results = [m for m in got if isinstance(m, TranslationResult)]
    assert len(results) == 3, got
    assert [r.utterance_index for r in results] == [0, 1, 2]
    assert all(r.node_id != victim_id for r in results)
    assert "river" in (results[0].text_asr or "")
    assert "sunny" in (results[1].text_asr or "")
    await conn.close()


async def test_a_running_node_installs_a_model_and_advertises_the_pair(
    cluster: LocalCluster, shared_models: Path, tiny_nmt: Path, tmp_path: Path
) -> None:
    publish_tiny_nmt(cluster, tiny_nmt)
    cluster.start_hub()
    cluster.start_scheduler()
    own = models_with_whisper(shared_models, tmp_path / "own-models")
    cluster.models_dir = own
    node_id = cluster.wait_node_ready(cluster.start_node("n"))

    def pairs() -> list[dict[str, str]]:
        node = next(n for n in cluster.cluster()["nodes"] if n["node_id"] == node_id)
        return list(node["language_pairs"])

    assert {"src": "en", "tgt": "zh"} not in pairs()
    await install_from_hub(cluster, "tiny-m2m100@1", own)
    await asyncio.to_thread(
        wait_for, lambda: {"src": "en", "tgt": "zh"} in pairs(), 60, "the pair to be advertised"
    )
    code, rows = await send_files(
        cluster.session_url, [SPEECH / "weather.wav"], "en", "zh", use_tts=False
    )
    assert code == 0
    assert rows[0]["node_id"] == node_id


async def test_a_room_of_three_in_two_languages(
    cluster: LocalCluster, shared_models: Path, tiny_nmt: Path, tmp_path: Path
) -> None:
    own = models_with_whisper(shared_models, tmp_path / "room-models")
    publish_tiny_nmt(cluster, tiny_nmt)
    cluster.start_hub()
    await install_from_hub(cluster, "tiny-m2m100", own)
    cluster.start_scheduler()
    cluster.models_dir = own
    cluster.wait_node_ready(cluster.start_node("n", max_jobs=2))

    inboxes: dict[str, list[Message]] = {"ana": [], "bo": [], "cy": []}
    langs = {"ana": "en", "bo": "en", "cy": "zh"}
    conns = {}
    for name in inboxes:
        conn = SessionConnection(
            cluster.session_url,
            SessionInit(src_lang="en", tgt_lang=langs[name]),
            inboxes[name].append,
        )
        await conn.start()
        conns[name] = conn
    await conns["ana"].send(RoomCreate(display_name="ana", preferred_lang="en"))

    async def first(name: str, kind: type) -> Message:  # type: ignore[type-arg]
        async with asyncio.timeout(30):
            while True:
                for m in inboxes[name]:
                    if isinstance(m, kind):
                        return m
                await asyncio.sleep(0.02)

    code = (await first("ana", RoomCreateAck)).room_code  # type: ignore[attr-defined]
    for name in ("bo", "cy"):
        await conns[name].send(
            RoomJoin(room_code=code, display_name=name, preferred_lang=langs[name])
        )
    async with asyncio.timeout(30):
        while not any(  # noqa: ASYNC110  (filled by the client's reader task as messages come)
            isinstance(m, RoomMembers) and len(m.members) == 3 for m in inboxes["ana"]
        ):
            await asyncio.sleep(0.02)
    before = cluster.cluster()["counters"]
    await conns["ana"].send_audio(pcm("weather.wav"))
    await conns["ana"].drained(120)
    heard = {}
    async with asyncio.timeout(60):
        while len(heard) < 2:
            for name in ("bo", "cy"):
                for m in inboxes[name]:
                    if isinstance(m, TranslationResult) and m.speaker_session_id:
                        heard[name] = m
            await asyncio.sleep(0.02)
    assert heard["bo"].tgt_lang == "en"
    assert "sunny" in (heard["bo"].text_translated or "")
    assert heard["cy"].tgt_lang == "zh"
    assert heard["cy"].speaker_display_name == "ana"
    own_result = next(m for m in inboxes["ana"] if isinstance(m, TranslationResult))
    assert "sunny" in (own_result.text_asr or "")
    after = cluster.cluster()["counters"]
    assert after["jobs_succeeded"] - before.get("jobs_succeeded", 0) == 2  # one per language
    for conn in conns.values():
        await conn.close()


async def test_pairing_binds_a_session_to_a_private_node(cluster: LocalCluster) -> None:
    cluster.start_scheduler()
    home = cluster.work / "private"
    proc = cluster._spawn(
        "private",
        [
            "-m",
            "lingua_node",
            "pair",
            "--scheduler",
            cluster.node_url,
            "--home",
            str(home),
            "--models-dir",
            str(cluster.models_dir),
            "--no-status",
            "--private",
        ],
    )
    code_re = re.compile(r"pairing code: (\d{6})")
    await asyncio.to_thread(
        wait_for, lambda: code_re.search(proc.log.read_text()), 120, "a pairing code"
    )
    match = code_re.search(proc.log.read_text())
    assert match is not None
    code, rows = await send_files(
        cluster.session_url, [SPEECH / "weather.wav"], "en", "en", use_tts=False
    )
    assert code == 1
    assert rows[0]["error"] == "NO_AVAILABLE_NODE"
    code, rows = await send_files(
        cluster.session_url,
        [SPEECH / "weather.wav"],
        "en",
        "en",
        use_tts=False,
        pairing_code=match.group(1),
    )
    assert code == 0
    assert rows[0]["node_id"] == cluster.node_id("private")
