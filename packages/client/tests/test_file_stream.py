"""`--file --stream --json` against a scripted scheduler test double that speaks the streaming
protocol (`stream_scheduler.py`): real-time chunks, one JSON line per partial as it comes,
then the final line with the latency from the end of the audio."""

from __future__ import annotations

import io
import json
import time

import numpy as np
from lingua_client._files import run_files
from lingua_protocol import pcm16_wav_bytes

from .client_support import SPEECH, Sched, clip
from .stream_scheduler import ScriptedStreamingScheduler, running, url


def rows_of(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def test_a_streamed_file_prints_partials_while_it_is_sent_then_the_final_line() -> None:
    out = io.StringIO()
    path = SPEECH / "market.wav"  # 3.34 s
    async with running(ScriptedStreamingScheduler()) as sched:
        started = time.perf_counter()
        code = await run_files(
            url(sched), [path], src="en", tgt="en", as_json=True, out=out, stream=True
        )
        took_s = time.perf_counter() - started
    assert code == 0
    assert sched.violations == []
    rows = rows_of(out)
    partials = [r for r in rows if r.get("partial")]
    [final] = [r for r in rows if not r.get("partial")]
    assert rows[-1] == final
    # every partial revision once, in order; the stale repeats and the late one never shown
    assert [r["revision"] for r in partials] == list(range(1, 7))
    assert all(r["utterance_index"] == 0 for r in partials)
    assert {r["text"] for r in partials}.isdisjoint({"STALE", "LATE"})
    assert partials[2] == {
        "utterance_index": 0,
        "partial": True,
        "revision": 3,
        "text": "w1 w2 w3",
        "stable_text": "w1 w2",
        "t_ms": partials[2]["t_ms"],
    }
    # partials come while the file is still being spoken, at its real-time pace
    t_ms = [float(r["t_ms"]) for r in partials]  # type: ignore[arg-type]
    assert t_ms == sorted(t_ms)
    assert t_ms[0] >= 400  # the first after 0.5 s of audio (no upper bound: a busy CI)
    assert t_ms[-1] >= 2800
    assert sched.timeline.index(("partial", 0, 1)) < sched.timeline.index(
        ("final_chunk", 0, len(sched.chunks) - 1)
    )
    assert took_s >= 3.2
    # the final line as in whole mode, latency from the end of the audio
    assert final["utterance_index"] == 0
    assert final["text_asr"] == "w1 w2 w3 w4 w5 w6"
    assert final["file"] == "market.wav"
    assert 0 < float(final["latency_ms"]) < 1000  # type: ignore[arg-type]
    # the chunks: binary frames, seq 0.. without gaps, the file's audio exactly, ~100 ms each
    assert sched.binary_frames == len(sched.chunks)
    assert [c.seq for c in sched.chunks] == list(range(len(sched.chunks)))
    assert [c.is_final for c in sched.chunks].count(True) == 1
    assert sched.chunks[-1].is_final
    audio = b"".join(c.payload.to_bytes() for c in sched.chunks)
    assert len(audio) == clip("market.wav").size * 2
    assert all(3200 <= len(c.payload) <= 6400 for c in sched.chunks[:-1])
    assert sched.utterances == []


async def test_a_scheduler_that_does_not_grant_streaming_gets_the_file_whole() -> None:
    out = io.StringIO()
    async with running(ScriptedStreamingScheduler(grant=False)) as sched:
        code = await run_files(
            url(sched),
            [SPEECH / "weather.wav"],
            src="en",
            tgt="en",
            as_json=True,
            out=out,
            stream=True,
            stream_speed=4.0,  # the pacing is checked in the first test
        )
    assert code == 0
    assert sched.chunks == []
    [u] = sched.utterances
    assert len(u.audio) == clip("weather.wav").size * 2
    [row] = rows_of(out)
    assert "partial" not in row
    assert row["text_asr"] == "w1 w2 w3 w4 w5 w6 w7"


async def test_with_vad_each_sentence_is_streamed_as_its_own_utterance(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    pause = np.zeros(16000, np.float32)
    audio = np.concatenate([clip("weather.wav", True), pause, clip("market.wav", True)])
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    path = tmp_path / "two.wav"
    path.write_bytes(pcm16_wav_bytes(pcm, 16000))
    out = io.StringIO()
    async with running(ScriptedStreamingScheduler()) as sched:
        code = await run_files(
            url(sched),
            [path],
            src="en",
            tgt="en",
            as_json=True,
            out=out,
            stream=True,
            stream_speed=4.0,  # the pacing is checked in the first test
            use_vad=True,
        )
    assert code == 0
    assert sched.violations == []
    finals = [r for r in rows_of(out) if not r.get("partial")]
    assert [r["utterance_index"] for r in finals] == [0, 1]
    assert {c.utterance_index for c in sched.chunks} == {0, 1}
    first_final = next(i for i, e in enumerate(sched.timeline) if e[0] == "final_chunk")
    assert ("partial", 1, 1) not in sched.timeline[:first_final]  # one after the other
    assert any(e[:2] == ("partial", 0) for e in sched.timeline[:first_final])


async def test_streamed_files_against_the_real_scheduler_each_get_their_final_line(
    sched: Sched,
) -> None:
    """Whatever the real scheduler grants (streaming or not), every streamed file ends in its
    one final line, in order, and partials, if any, come before it."""
    await sched.node()
    out = io.StringIO()
    files = [SPEECH / "market.wav", SPEECH / "report.wav"]
    code = await run_files(
        sched.session_url,
        files,
        src="en",
        tgt="en",
        as_json=True,
        out=out,
        stream=True,
        stream_speed=4.0,
    )
    assert code == 0
    rows = rows_of(out)
    finals = [r for r in rows if not r.get("partial")]
    assert [(r["utterance_index"], r["file"]) for r in finals] == [
        (0, "market.wav"),
        (1, "report.wav"),
    ]
    assert all(r["latency_ms"] is not None for r in finals)
    for r in rows:
        if r.get("partial"):
            assert rows.index(r) < rows.index(finals[int(r["utterance_index"])])  # type: ignore[arg-type]


async def test_a_connection_dropped_mid_stream_is_resumed_and_the_stream_sent_again() -> None:
    out = io.StringIO()
    async with running(ScriptedStreamingScheduler(drop_after_chunks=5)) as sched:
        code = await run_files(
            url(sched),
            [SPEECH / "market.wav"],
            src="en",
            tgt="en",
            as_json=True,
            out=out,
            stream=True,
            stream_speed=4.0,
        )
    assert code == 0
    assert sched.violations == []
    assert sched.sessions == 1  # resumed, not a new session
    assert sched.duplicates >= 5  # the stream went again from seq 0; what was held is dropped
    finals = [r for r in rows_of(out) if not r.get("partial")]
    assert [(r["utterance_index"], r["text_asr"]) for r in finals] == [(0, "w1 w2 w3 w4 w5 w6")]
    held = {c.seq: c.payload.to_bytes() for c in sched.chunks}
    assert len(b"".join(held[k] for k in sorted(held))) == clip("market.wav").size * 2


async def test_after_a_scheduler_restart_mid_stream_the_utterance_streams_from_its_start() -> None:
    out = io.StringIO()
    sched = ScriptedStreamingScheduler(drop_after_chunks=5, restart_on_drop=True)
    async with running(sched):
        code = await run_files(
            url(sched),
            [SPEECH / "market.wav"],
            src="en",
            tgt="en",
            as_json=True,
            out=out,
            stream=True,
            stream_speed=4.0,
        )
    assert code == 0
    assert sched.sessions == 2
    second = [c for c in sched.chunks[5:]]
    assert second[0].seq == 0
    assert second[0].session_id == "s2"
    assert sum(len(c.payload) for c in second) == clip("market.wav").size * 2
    finals = [r for r in rows_of(out) if not r.get("partial")]
    assert [(r["utterance_index"], r["text_asr"]) for r in finals] == [(0, "w1 w2 w3 w4 w5 w6")]
