"""`--file` mode against a real scheduler (in this process, over real sockets) and a scripted
test-double node."""

from __future__ import annotations

import io
import json
import wave
from pathlib import Path

from client_support import SPEECH, Sched
from lingua_client.__main__ import main
from lingua_client.files import run_files


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
    assert rows[0]["text_translated"] == "en:0" and rows[0]["latency_ms"] > 0
    for row in rows:
        assert row["tts_sample_rate"] == 22050
        with wave.open(row["tts_file"], "rb") as w:
            assert w.getframerate() == 22050 and w.getnchannels() == 1 and w.getsampwidth() == 2
            assert w.getnframes() == 22050


async def test_an_unservable_request_exits_1_with_the_error(sched: Sched) -> None:
    out = io.StringIO()
    code = await run_files(
        sched.session_url, [SPEECH / "weather.wav"], src="en", tgt="zh", as_json=True, out=out
    )
    assert code == 1
    row = json.loads(out.getvalue().splitlines()[0])
    assert row["error"] == "NO_AVAILABLE_NODE" and row["utterance_index"] == 0


def test_no_scheduler_is_exit_2(capsys) -> None:  # type: ignore[no-untyped-def]
    code = main(["--file", str(SPEECH / "weather.wav"), "--scheduler", "ws://127.0.0.1:9/ws"])
    assert code == 2
    assert "cannot reach the scheduler" in capsys.readouterr().err


def test_a_missing_file_is_exit_2(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--file", "/nonexistent.wav"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_no_audio_device_is_one_line_and_exit_2(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--mic"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--file" in err and "Traceback" not in err
