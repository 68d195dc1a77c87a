"""The Textual app in streaming mode, driven by its pilot, against a scripted scheduler test
double that speaks the streaming protocol (`stream_scheduler.py`) and a test double of the
microphone playing speech at its real pace."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np
from lingua_client._app import CaptionView, LinguaApp
from lingua_protocol import AsrPartial, RoomError, SessionInit, TranslationResult
from textual.pilot import Pilot
from textual.widgets import Static

from .client_support import clip
from .fake_mic import RecordedMic
from .stream_scheduler import ScriptedStreamingScheduler, running, url


async def until(pilot: Pilot[int], check: Callable[[], bool], timeout_s: float = 15.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():
            await pilot.pause(0.02)


def streaming_app(sched: ScriptedStreamingScheduler, mic: RecordedMic) -> LinguaApp:
    init = SessionInit(src_lang="en", tgt_lang="en", enable_streaming_asr=True)
    return LinguaApp(url(sched), init, mic, None)  # type: ignore[arg-type]


def status_text(app: LinguaApp) -> str:
    return str(app.query_one("#status", Static).render())


async def test_the_live_line_shows_committed_words_and_the_guess_then_becomes_the_caption() -> None:
    speech = clip("weather.wav", True)
    mic = RecordedMic(np.concatenate([speech, np.zeros(16000, np.float32)]), pace_s=0.032)
    async with running(ScriptedStreamingScheduler()) as sched:
        app = streaming_app(sched, mic)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: 0 in app.captions.rows and app.captions.rows[0].stable != "")
            row = app.captions.rows[0]
            assert row.state == "pending"
            assert sched.chunks[-1].is_final is False  # still being spoken
            view = app.query_one(CaptionView)
            assert view.has_class("live")
            text = view.render()
            stable_style = view.get_component_rich_style("caption--stable", partial=True)
            tail_style = view.get_component_rich_style("caption--tail", partial=True)
            assert stable_style != tail_style
            spans = {text.plain[s.start : s.end]: s.style for s in text.spans}
            assert spans[row.stable] == stable_style
            assert spans[row.tail] == tail_style
            assert row.tail.strip().startswith("w")
            assert "live" in status_text(app)
            await until(pilot, lambda: app.captions.rows[0].state == "done")
            final = app.captions.rows[0]
            assert final.translation == final.source.upper()
            assert not final.live
            assert not app.query_one(CaptionView).has_class("live")
            assert "LATE" not in str(app.query_one(CaptionView).render())
            assert app.last_latency_ms is not None
            assert 0 < app.last_latency_ms < 1000  # from the end of speech, not its start
            await pilot.press("q")
    assert sched.violations == []
    assert sched.utterances == []  # all of it went as chunks
    assert ("partial", 0, 1) in sched.timeline


async def test_space_closes_the_streamed_utterance_and_the_next_words_open_another() -> None:
    speech = np.concatenate([clip("river.wav", True), clip("languages.wav", True)])
    mic = RecordedMic(speech[: 16000 * 2], tail_s=0)  # still talking when the key is pressed
    async with running(ScriptedStreamingScheduler()) as sched:
        app = streaming_app(sched, mic)
        async with app.run_test() as pilot:
            await mic.done.wait()
            await until(pilot, lambda: bool(sched.chunks))
            assert app.cutter.state == "speech"
            await pilot.press("space")
            await until(
                pilot, lambda: 0 in app.captions.rows and app.captions.rows[0].state == "done"
            )
            assert [c.is_final for c in sched.chunks].count(True) == 1
            size = sum(len(c.payload) for c in sched.chunks)
            assert size >= 2 * 16000 * 2 * 0.9  # the 2 s said so far
            await pilot.press("q")


async def test_a_room_members_live_line_is_shown_until_their_final_result() -> None:
    async with running(ScriptedStreamingScheduler()) as sched:
        app = streaming_app(sched, RecordedMic(np.zeros(0, np.float32), tail_s=0))
        async with app.run_test() as pilot:
            await until(pilot, lambda: app.conn.session_id is not None)
            room = {"room_code": "123456", "speaker_session_id": "s-bo"}
            app.on_message(
                AsrPartial(
                    session_id="s1",
                    utterance_index=4,
                    text="hola a",
                    stable_text="hola",
                    revision=2,
                    speaker_display_name="Bo",
                    **room,  # type: ignore[arg-type]
                )
            )
            await pilot.pause()
            [live] = [v for v in app.query(CaptionView) if v.row.live]
            assert str(live.render()).startswith("Bo: hola a")
            app.on_message(
                TranslationResult(
                    session_id="s1",
                    utterance_index=4,
                    text_asr="hola a todos",
                    text_translated="hello everyone",
                    speaker_display_name="Bo",
                    **room,  # type: ignore[arg-type]
                )
            )
            await pilot.pause()
            assert not [v for v in app.query(CaptionView) if v.row.live]
            assert app.captions.room_rows[-1].translation == "hello everyone"
            partial = AsrPartial(
                session_id="s1",
                utterance_index=5,
                text="y",
                revision=1,
                **room,  # type: ignore[arg-type]
            )
            app.on_message(partial)
            app.on_message(
                RoomError(
                    room_code="123456",
                    session_id="s1",
                    speaker_session_id="s-bo",
                    utterance_index=5,
                    code="NO_AVAILABLE_NODE",
                    message="none",
                )
            )
            await pilot.pause()
            assert not app.captions.room_live  # a failed utterance leaves no live line behind
            await pilot.press("q")
