"""The Textual app driven by its pilot, against a real scheduler (in this process, over real
sockets), a scripted test-double node, and a test double of the microphone playing speech."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import numpy as np
from lingua_client._app import LinguaApp
from lingua_protocol import RoomMember, RoomMembers, SessionInit
from lingua_scheduler import SchedulerServer, SchedulerSettings
from lingua_scheduler.testing import ScriptedNode
from textual.pilot import Pilot
from textual.widgets import Static

from .client_support import Sched, clip
from .fake_mic import RecordedMic


async def until(pilot: Pilot[int], check: Callable[[], bool], timeout_s: float = 15.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():
            await pilot.pause(0.02)


def app_for(sched: Sched, mic: RecordedMic, tgt: str = "en", **kw: object) -> LinguaApp:
    return LinguaApp(sched.session_url, SessionInit(src_lang="en", tgt_lang=tgt), mic, None, **kw)  # type: ignore[arg-type]


def status_text(app: LinguaApp) -> str:
    return str(app.query_one("#status", Static).render())


def screen_text(app: LinguaApp) -> str:
    """Everything on screen, as plain text."""
    return "\n".join(str(w.render()) for w in app.query(Static))


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
        assert "latency" in status_text(app)
        assert " ms" in status_text(app)
        assert app.last_latency_ms is not None
        assert app.last_latency_ms > 0
        await pilot.press("q")


async def test_space_cuts_the_current_speech_now(sched: Sched) -> None:
    node = await sched.node()
    speech = np.concatenate([clip("river.wav", True), clip("languages.wav", True)])
    mic = RecordedMic(speech[: 16000 * 4], tail_s=0)  # still talking when the key is pressed
    app = app_for(sched, mic)
    async with app.run_test() as pilot:
        await mic.done.wait()
        assert app.cutter.state == "speech"
        assert not app.captions.rows
        await pilot.press("space")
        await until(pilot, lambda: bool(app.captions.rows) and app.captions.rows[0].state == "done")
        assert len(node.jobs) == 1
        assert node.jobs[0].utterance_index == 0
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
        assert (await asyncio.to_thread(Path(path).read_text)).startswith("<svg")
        await pilot.press("q")


async def test_peer_supplied_markup_is_shown_as_plain_text(sched: Sched) -> None:
    node = await sched.node(hold=True)
    mic = RecordedMic(np.concatenate([clip("weather.wav", True), np.zeros(16000, np.float32)]))
    app = app_for(sched, mic)
    async with app.run_test(size=(80, 24)) as pilot:
        [job] = await node.wait_jobs(1)
        await node.send_result(job, text_translated="[/bold] closed [red]", text_asr="[b]x[/i]")
        await until(
            pilot,
            lambda: app.captions.rows.get(0) is not None and app.captions.rows[0].state == "done",
        )
        app.room_code = "123456"
        app.on_message(
            RoomMembers(
                room_code="123456",
                members=[RoomMember(session_id="s-x", display_name="[/bold]Eve[link=x]")],
            )
        )
        await pilot.pause()
        shown = screen_text(app)
        assert "[/bold] closed [red]" in shown
        assert "[b]x[/i]" in shown
        assert "[/bold]Eve[link=x]" in shown
        await pilot.press("q")


async def test_the_app_shows_the_outage_and_recovers_after_a_scheduler_restart() -> None:
    settings = SchedulerSettings(host="127.0.0.1", port=0, sticky_nodes=False)
    first = SchedulerServer(settings)
    await first.start()
    port = first.port
    url = f"ws://127.0.0.1:{port}"
    node = ScriptedNode(f"{url}/ws/node", "n1", pairs=[("en", "en")])
    await node.start()
    pause = np.zeros(16000, np.float32)
    mic = RecordedMic(np.concatenate([clip("weather.wav", True), pause]), tail_s=0)
    app = LinguaApp(
        f"{url}/ws/session",
        SessionInit(src_lang="en", tgt_lang="en"),
        mic,
        None,
        reconnect_min_s=0.05,
        reconnect_max_s=0.2,
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await until(
            pilot,
            lambda: app.captions.rows.get(0) is not None and app.captions.rows[0].state == "done",
        )
        await node.close()
        await first.stop()
        await until(pilot, lambda: "OFFLINE" in status_text(app))
        second = SchedulerServer(SchedulerSettings(host="127.0.0.1", port=port, sticky_nodes=False))
        await second.start()
        node2 = ScriptedNode(f"{url}/ws/node", "n2", pairs=[("en", "en")])
        await node2.start()
        try:
            await until(pilot, lambda: status_text(app).startswith("connected"))
            await app.send_cut(clip("report.wav", True), manual=False)
            await until(
                pilot,
                lambda: (
                    app.captions.rows.get(1) is not None and app.captions.rows[1].state == "done"
                ),
            )
            assert app.captions.rows[1].translation == "en:0"  # wire index 0 of the new session
            await pilot.press("q")
        finally:
            await node2.close()
            await second.stop()


async def test_playback_holds_while_the_user_talks_in_half_duplex(sched: Sched) -> None:
    await sched.node()
    speech = clip("river.wav", True)
    mic = RecordedMic(np.concatenate([speech, np.zeros(16000, np.float32)]), pace_s=0.0)
    player = HoldRecorder()
    app = LinguaApp(sched.session_url, SessionInit(src_lang="en", tgt_lang="en"), mic, player)  # type: ignore[arg-type]
    async with app.run_test() as pilot:
        await mic.done.wait()
        await pilot.pause()
        assert True in player.holds
        assert player.holds[-1] is False
        await pilot.press("q")


class HoldRecorder:
    """A test double of the player that records each `hold` it is given."""

    def __init__(self) -> None:
        self.enabled = True
        self.holds: list[bool] = []

    @property
    def hold(self) -> bool:
        return bool(self.holds and self.holds[-1])

    @hold.setter
    def hold(self, value: bool) -> None:
        if not self.holds or self.holds[-1] != value:
            self.holds.append(value)

    def enqueue(self, pcm16: bytes, rate: int) -> None:
        pass
