"""The Textual app driven by its pilot, against a real scheduler (in this process, over real
sockets), a scripted test-double node, and a test double of the microphone playing speech."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import numpy as np
from client_support import Sched, clip
from fake_mic import RecordedMic
from lingua_client.app import LinguaApp
from lingua_protocol import SessionInit
from textual.pilot import Pilot
from textual.widgets import Static


async def until(pilot: Pilot[int], check: Callable[[], bool], timeout_s: float = 15.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():
            await pilot.pause(0.02)


def app_for(sched: Sched, mic: RecordedMic, tgt: str = "en", **kw: object) -> LinguaApp:
    return LinguaApp(sched.session_url, SessionInit(src_lang="en", tgt_lang=tgt), mic, None, **kw)  # type: ignore[arg-type]


def status_text(app: LinguaApp) -> str:
    return str(app.query_one("#status", Static).render())


async def test_captions_arrive_in_order_and_the_status_bar_shows_latency(sched: Sched) -> None:
    await sched.node()
    pause = np.zeros(16000, np.float32)
    names = ["weather.wav", "report.wav", "market.wav"]
    mic = RecordedMic(np.concatenate([x for n in names for x in (clip(n, True), pause)]))
    app = app_for(sched, mic)
    async with app.run_test() as pilot:
        await until(pilot, lambda: sum(r.state == "done" for r in app.captions.ordered()) == 3)
        rows = app.captions.ordered()
        assert [r.index for r in rows] == [0, 1, 2]
        assert [r.translation for r in rows] == ["en:0", "en:1", "en:2"]
        await pilot.pause()
        assert "latency" in status_text(app) and " ms" in status_text(app)
        assert app.last_latency_ms is not None and app.last_latency_ms > 0
        await pilot.press("q")


async def test_space_cuts_the_current_speech_now(sched: Sched) -> None:
    node = await sched.node()
    speech = np.concatenate([clip("river.wav", True), clip("languages.wav", True)])
    mic = RecordedMic(speech[: 16000 * 4], tail_s=0)  # still talking when the key is pressed
    app = app_for(sched, mic)
    async with app.run_test() as pilot:
        await mic.done.wait()
        assert app.cutter.state == "speech" and not app.captions.rows
        await pilot.press("space")
        await until(pilot, lambda: bool(app.captions.rows) and app.captions.rows[0].state == "done")
        assert len(node.jobs) == 1 and node.jobs[0].utterance_index == 0
        assert len(node.jobs[0].audio.to_bytes()) >= 2 * 16000 * 3  # the 4 s said so far
        await pilot.press("q")


async def test_no_available_node_shows_an_error_row(sched: Sched) -> None:
    mic = RecordedMic(np.concatenate([clip("weather.wav", True), np.zeros(16000, np.float32)]))
    app = app_for(sched, mic, tgt="zh")
    async with app.run_test() as pilot:
        await until(
            pilot, lambda: bool(app.captions.rows) and app.captions.rows[0].state == "error"
        )
        assert "NO_AVAILABLE_NODE" in app.captions.rows[0].translation
        await pilot.press("q")


async def test_screenshot_for_the_docs(sched: Sched, tmp_path: Path) -> None:
    await sched.node()
    pause = np.zeros(16000, np.float32)
    mic = RecordedMic(np.concatenate([clip("weather.wav", True), pause, clip("train.wav", True)]))
    app = app_for(sched, mic)
    async with app.run_test(size=(110, 24)) as pilot:
        await until(pilot, lambda: sum(r.state == "done" for r in app.captions.ordered()) == 2)
        await pilot.pause()
        path = app.save_screenshot(str(tmp_path / "shot.svg"))
        assert Path(path).read_text().startswith("<svg")
        await pilot.press("q")
