"""`--file` mode against a real scheduler (in this process, over real sockets) and a scripted
test-double node."""

from __future__ import annotations

import io
import json
import wave
from pathlib import Path

import av
import numpy as np
import pytest
from lingua_client.__main__ import main
from lingua_client._files import UnreadableAudio, read_audio_16k, run_files

from .client_support import SPEECH, Sched, clip


def sf_write(path: Path, audio: np.ndarray, kind: str, container: str = "wav") -> None:
    """Write 16 kHz mono audio as 24-bit PCM, 32-bit float or FLAC with PyAV."""
    codec = {"FLOAT": "pcm_f32le", "PCM_24": "pcm_s24le", "PCM_16": "flac"}[kind]
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=16000, layout="mono")
        fmt = {"pcm_f32le": "flt", "pcm_s24le": "s32", "flac": "s16"}[codec]
        samples = audio if fmt == "flt" else (audio * (2**31 - 1 if fmt == "s32" else 32767))
        dtype = {"flt": np.float32, "s32": np.int32, "s16": np.int16}[fmt]
        frame = av.AudioFrame.from_ndarray(
            samples.astype(dtype).reshape(1, -1), format=fmt, layout="mono"
        )
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


async def test_json_lines_and_saved_tts_at_the_stated_rate(sched: Sched, tmp_path: Path) -> None:
    await sched.node(tts_bytes=22050 * 2)  # one second of speech at 22.05 kHz
    out = io.StringIO()
    files = [SPEECH / "weather.wav", SPEECH / "report.wav"]
    code = await run_files(
        sched.session_url,
        files,
        src="en",
        tgt="en",
        as_json=True,
        save_tts=tmp_path / "tts",
        out=out,
    )
    assert code == 0
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["utterance_index"] for r in rows] == [0, 1]
    assert [r["file"] for r in rows] == ["weather.wav", "report.wav"]
    assert rows[0]["text_translated"] == "en:0"
    assert rows[0]["latency_ms"] > 0
    for row in rows:
        assert row["tts_sample_rate"] == 22050
        with wave.open(row["tts_file"], "rb") as w:
            assert w.getframerate() == 22050
            assert w.getnchannels() == 1
            assert w.getsampwidth() == 2
            assert w.getnframes() == 22050


async def test_an_unservable_request_exits_1_with_the_error(sched: Sched) -> None:
    out = io.StringIO()
    code = await run_files(
        sched.session_url, [SPEECH / "weather.wav"], src="en", tgt="zh", as_json=True, out=out
    )
    assert code == 1
    row = json.loads(out.getvalue().splitlines()[0])
    assert row["error"] == "NO_AVAILABLE_NODE"
    assert row["utterance_index"] == 0


def test_no_scheduler_is_exit_2(capsys) -> None:  # type: ignore[no-untyped-def]
    url = "ws://127.0.0.1:9/ws/session"
    code = main(["--file", str(SPEECH / "weather.wav"), "--scheduler", url])
    assert code == 2
    err = capsys.readouterr().err
    assert "cannot reach the scheduler" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "url",
    [
        "ws://127.0.0.1:5010/ws/nope",
        "ws://127.0.0.1:5010",
        "http://127.0.0.1:5010",
        "127.0.0.1:5010",
        "ws://127.0.0.1:50x0/ws/session",
    ],
)
@pytest.mark.parametrize("mode", ["--file", "--mic"])
def test_a_bad_scheduler_url_is_one_line_and_exit_2(capsys, url: str, mode: str) -> None:  # type: ignore[no-untyped-def]
    argv = [mode, str(SPEECH / "weather.wav")] if mode == "--file" else [mode]
    assert main([*argv, "--scheduler", url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert "/ws/session" in err


async def test_a_wrong_path_on_a_live_server_is_one_line_and_exit_2(sched: Sched, capsys) -> None:  # type: ignore[no-untyped-def]
    url = sched.session_url.replace("/ws/session", "/api/ws/session")
    code = await run_files(url, [SPEECH / "weather.wav"], src="en", tgt="en")
    assert code == 2
    err = capsys.readouterr().err
    assert "HTTP 404" in err
    assert err.count("\n") == 1


async def test_24_bit_float_and_flac_inputs_are_converted(sched: Sched, tmp_path: Path) -> None:
    await sched.node()
    audio = clip("weather.wav")
    float_wav = tmp_path / "float.wav"
    sf_write(float_wav, audio, "FLOAT")
    pcm24 = tmp_path / "pcm24.wav"
    sf_write(pcm24, audio, "PCM_24")
    flac = tmp_path / "speech.flac"
    sf_write(flac, audio, "PCM_16", container="flac")
    for path in (float_wav, pcm24, flac):
        got = read_audio_16k(path)
        assert abs(got.size - audio.size) < 400
        assert float(np.abs(got[: audio.size] - audio[: got.size]).mean()) < 0.01
    out = io.StringIO()
    code = await run_files(sched.session_url, [flac], src="en", tgt="en", as_json=True, out=out)
    assert code == 0


def test_a_file_that_is_not_audio_is_one_line_and_exit_2(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    junk = tmp_path / "notes.wav"
    junk.write_text("this is not audio\n" * 20)
    with pytest.raises(UnreadableAudio):
        read_audio_16k(junk)
    code = main(["--file", str(junk), "--scheduler", "ws://127.0.0.1:9/ws/session"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_a_missing_file_is_exit_2(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--file", "/nonexistent.wav"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_no_audio_device_is_one_line_and_exit_2(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--mic"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--file" in err
    assert "Traceback" not in err
