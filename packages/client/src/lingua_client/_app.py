"""The live-caption app: microphone -> VAD cuts -> scheduler -> captions and translated speech.

The audio source and the player are passed in, so tests drive the app with a WAV-playing test
double of the microphone and a silent player, against a real scheduler. Everything a peer
supplies (node text, names, error messages) is rendered as plain `rich.text.Text`, never as
markup.

Streaming (when `init.enable_streaming_asr` is set, the `--mic` default): utterances go as
chunks while the VAD hears speech, each pending caption is a live line (committed words and
the unstable tail styled by `app.tcss`'s `caption--stable` and `caption--tail`) that becomes
the final caption; the latency shown is still from the end of speech to the final result. A
scheduler that does not grant streaming gets whole utterances, with no live line.

Half-duplex (the default) means the user's voice and the translated speech never overlap:
the microphone is never discarded; while the user is talking, playback holds its position and
goes on when the utterance ends. `--full-duplex` plays regardless.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
from lingua_protocol import (
    Error,
    Message,
    PipelineConfig,
    RoomCreate,
    RoomCreateAck,
    RoomExpired,
    RoomJoin,
    RoomMembers,
    SessionInit,
    TranslationResult,
    float32_to_pcm16,
)
from rich.style import Style
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.css.query import NoMatches
from textual.widgets import Footer, Static

from ._captions import Captions, Row
from ._connection import LinkStatus, SessionConnection
from ._cutter import CutterSettings, StreamEvent, UtteranceCutter
from ._live_utterances import LiveUtterances

log = logging.getLogger("lingua.client.app")

ROWS_SHOWN = 200
"""Caption rows kept on screen; older ones stay in the transcript (`c`)."""


class AudioSource(Protocol):
    muted: bool
    paused: bool

    def blocks(self) -> AsyncIterator[np.ndarray]: ...


class TTSPlayer(Protocol):
    enabled: bool

    def enqueue(self, pcm16: bytes, rate: int) -> None: ...


STATE_STYLE = {
    "pending": "yellow",
    "done": "",
    "empty": "dim",
    "error": "red",
    "missing": "red",
}


def caption_text(
    row: Row, in_room: bool, stable_style: Style | str = "", tail_style: Style | str = ""
) -> Text:
    """One caption: the translation first and large, what was said below it, dim. A live line
    (a pending row with a partial) shows the committed words and the guess after them."""
    text = Text(no_wrap=False)
    if in_room or row.speaker != "me":
        text.append(f"{row.speaker}: ", style="bold cyan")
    if row.live:
        text.append(row.stable, style=stable_style)
        text.append(row.tail, style=tail_style)
        text.append(" …", style="yellow")
    elif row.state == "pending":
        text.append("…", style="yellow")
    elif row.state in ("error", "missing"):
        text.append(row.translation, style="red")
    elif row.state == "empty":
        text.append("(nothing heard)", style="dim")
    else:
        text.append(row.translation, style="bold")
    if row.source and row.state not in ("error", "missing"):
        text.append("\n  ")
        text.append(row.source, style="dim italic")
    return text


class CaptionView(Static):
    """One caption row. It renders from its row each time, so the live line's two styles come
    from `app.tcss` (`caption--stable`, `caption--tail`)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"caption--stable", "caption--tail"}

    def __init__(self, row: Row, in_room: bool) -> None:
        super().__init__(classes=f"caption {row.state}")
        self.row = row
        self.in_room = in_room

    def show(self, row: Row, in_room: bool) -> None:
        self.row, self.in_room = row, in_room
        self.set_classes(f"caption {row.state}" + (" live" if row.live else ""))
        self.refresh(layout=True)

    def render(self) -> Text:
        return caption_text(
            self.row,
            self.in_room,
            self.get_component_rich_style("caption--stable", partial=True),
            self.get_component_rich_style("caption--tail", partial=True),
        )


class LogToApp(logging.Handler):
    """Warnings and errors of the client's loggers go to the app's notice line (the log file
    gets everything): nothing is written over the screen."""

    def __init__(self, app: LinguaApp) -> None:
        super().__init__(logging.WARNING)
        self.app = app

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "shown_on_meter", False):
            return  # device trouble has its line in the meter: not twice on screen
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        self.app.show_log(message.splitlines()[0] if message else "")


class LinguaApp(App[int]):
    CSS_PATH = "app.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "cut", "cut now"),
        Binding("m", "mute", "mute"),
        Binding("t", "toggle_tts", "speech on/off"),
        Binding("c", "save", "save text"),
        Binding("q", "quit_app", "quit"),
        Binding("ctrl+c", "quit_app", "quit", show=False, priority=True),
    ]

    def __init__(
        self,
        url: str,
        init: SessionInit,
        source: AudioSource,
        player: TTSPlayer | None,
        *,
        cutter_settings: CutterSettings | None = None,
        probability: Callable[[np.ndarray], float] | None = None,
        room_create: bool = False,
        room_code: str | None = None,
        display_name: str | None = None,
        full_duplex: bool = False,
        transcript_path: Path | None = None,
        reconnect_min_s: float = 0.3,
        reconnect_max_s: float = 10.0,
    ) -> None:
        super().__init__()
        if player is None:  # nothing to play it on: the session asks for no speech at all
            pipeline = (init.pipeline or PipelineConfig()).model_copy(update={"use_tts": False})
            init = init.model_copy(update={"pipeline": pipeline})
        self.url = url
        self.init = init
        self.source = source
        self.player = player
        self.captions = Captions()
        if probability is None:
            from ._vad import SileroStream

            probability = SileroStream()
        self.cutter = UtteranceCutter(probability, cutter_settings or CutterSettings())
        self.room_create = room_create
        self.room_code = room_code
        self.display_name = display_name
        self.full_duplex = full_duplex
        self.transcript_path = transcript_path or Path("lingua-transcript.txt")
        self.tts_wanted = player is not None and (init.pipeline is None or init.pipeline.use_tts)
        self.conn = SessionConnection(
            url,
            init,
            self.on_message,
            start_attempts=None,
            on_status=self.on_link,
            reconnect_min_s=reconnect_min_s,
            reconnect_max_s=reconnect_max_s,
        )
        self.streaming = bool(init.enable_streaming_asr)
        self.live = LiveUtterances(
            self.conn, lambda: None if self.tts_wanted else self._pipeline(use_tts=False)
        )
        self.link = LinkStatus("connecting")
        self.members: list[str] = []
        self.last_latency_ms: float | None = None
        self.last_timings: str = ""
        self.notice = ""
        self._room_session: str | None = None
        self._row_widgets: dict[str, CaptionView] = {}
        self._log_handler = LogToApp(self)

    # --- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield VerticalScroll(id="captions")
            yield Static("", id="room")
        yield Static("", id="meter")
        yield Static("", id="notice")
        yield Static("", id="status")
        yield Footer()

    async def on_mount(self) -> None:
        self.title = "Lingua"
        logging.getLogger("lingua").addHandler(self._log_handler)
        self.query_one("#room").display = False
        self.refresh_status()
        self.refresh_meter()
        self.conn.launch()
        self.run_worker(self.capture(), exclusive=True, group="capture")
        self.set_interval(0.5, self.watch_devices)

    def on_unmount(self) -> None:
        logging.getLogger("lingua").removeHandler(self._log_handler)

    # --- audio -----------------------------------------------------------------------------

    async def capture(self) -> None:
        async for block in self.source.blocks():
            if self.streaming:
                await self.send_stream_events(self.cutter.feed_stream(block))
            else:
                for cut in self.cutter.feed(block):
                    await self.send_cut(cut.audio, manual=cut.manual)
            if self.player is not None and hasattr(self.player, "hold"):
                # half-duplex: the speaker holds the floor; playback waits, the mic never does
                self.player.hold = not self.full_duplex and self.cutter.state == "speech"
            self.refresh_meter()

    async def send_cut(self, audio: np.ndarray, manual: bool) -> None:
        if audio.size == 0:
            return
        pipeline = None if self.tts_wanted else self._pipeline(use_tts=False)
        index = await self.conn.send_audio(
            float32_to_pcm16(audio),
            manual_cut=manual,
            spoken_until=time.perf_counter(),
            pipeline=pipeline,
        )
        if index not in self.captions.rows:
            self.captions.pending(index)
        self.refresh_captions()

    async def send_stream_events(self, events: list[StreamEvent]) -> None:
        if not events:
            return
        for index in await self.live.apply(events):
            if index not in self.captions.rows:
                self.captions.pending(index)
        self.refresh_captions()

    def _pipeline(self, use_tts: bool) -> PipelineConfig:
        base = self.init.pipeline or PipelineConfig()
        return base.model_copy(update={"use_tts": use_tts})

    def watch_devices(self) -> None:
        check = getattr(self.player, "check", None)
        if callable(check):
            check()
        self.refresh_meter()

    # --- messages from the scheduler -------------------------------------------------------

    def on_link(self, status: LinkStatus) -> None:
        self.link = status
        if status.state == "connected" and self.conn.session_id != self._room_session:
            first = self._room_session is None
            self._room_session = self.conn.session_id
            if first and (self.room_create or self.room_code):
                self.run_worker(self._enter_room(), group="room")
            elif not first and self.room_code:
                self.notice = f"the scheduler restarted: room {self.room_code} has ended"
                self.room_code = None
                self.members = []
                self.captions.room_live.clear()  # nobody is talking in a room we left
                self.refresh_captions()
        self.refresh_status()

    async def _enter_room(self) -> None:
        sid = self.conn.session_id
        if self.room_create:
            await self.conn.send(
                RoomCreate(
                    session_id=sid,
                    display_name=self.display_name,
                    preferred_lang=self.init.tgt_lang,
                )
            )
        elif self.room_code:
            await self.conn.send(
                RoomJoin(
                    session_id=sid,
                    room_code=self.room_code,
                    display_name=self.display_name,
                    preferred_lang=self.init.tgt_lang,
                )
            )

    def on_message(self, message: Message) -> None:
        index = getattr(message, "utterance_index", None)
        latency = self.conn.latency_ms(index) if isinstance(index, int) else None
        row = self.captions.apply(message, latency)
        if isinstance(message, TranslationResult):
            if row is not None and row.speaker == "me" and latency is not None:
                self.last_latency_ms = latency
                log.info("utterance %d answered %.0f ms after its cut", row.index, latency)
            t = message.service_timings
            if t is not None:
                parts = [
                    f"{k} {v:.0f}"
                    for k, v in (("asr", t.asr_ms), ("nmt", t.nmt_ms), ("tts", t.tts_ms))
                    if v is not None
                ]
                self.last_timings = " ".join(parts)
            audio = message.tts_audio
            if (
                self.player is not None
                and self.tts_wanted
                and audio is not None
                and message.tts_sample_rate
            ):
                self.player.enqueue(audio.to_bytes(), message.tts_sample_rate)
        elif isinstance(message, RoomCreateAck):
            self.room_code = message.room_code
            self.notice = (
                f"room {message.room_code} created: others join with --room {message.room_code}"
            )
        elif isinstance(message, RoomMembers):
            self.members = [
                f"{m.display_name or m.session_id[:8]} ({m.preferred_lang or '?'})"
                for m in message.members
            ]
        elif isinstance(message, RoomExpired):
            self.notice = f"room {message.room_code} expired"
            self.room_code = None
            self.members = []
            self.captions.room_live.clear()  # nobody is talking in a room we left
        elif isinstance(message, Error) and message.utterance_index is None:
            self.notice = f"{message.code}: {message.message}"
        self.refresh_captions()
        self.refresh_status()

    def show_log(self, line: str) -> None:
        """A warning from the client's own loggers (may come from another thread)."""
        try:
            self.call_from_thread(self._set_notice, line)
        except RuntimeError:  # already on the app's thread
            self._set_notice(line)

    def _set_notice(self, line: str) -> None:
        self.notice = line
        with contextlib.suppress(NoMatches):  # before the widgets exist: shown once they do
            self.refresh_status()

    # --- rendering -------------------------------------------------------------------------

    def refresh_captions(self) -> None:
        view = self.query_one("#captions", VerticalScroll)
        at_end = view.scroll_y >= view.max_scroll_y - 1
        in_room = self.room_code is not None
        rows = [(f"me-{r.index}", r) for r in self.captions.ordered()[-ROWS_SHOWN:]]
        rows += [(f"room-{i}", r) for i, r in enumerate(self.captions.room_rows[-ROWS_SHOWN:])]
        rows += [(f"live-{s}-{i}", r) for (s, i), r in self.captions.room_live.items()]
        new: list[Static] = []
        for key, row in rows:
            widget = self._row_widgets.get(key)
            if widget is None:
                widget = CaptionView(row, in_room)
                self._row_widgets[key] = widget
                new.append(widget)
            widget.show(row, in_room)
        if new:
            view.mount_all(new)
        shown = {key for key, _ in rows}
        for key in [k for k in self._row_widgets if k not in shown]:
            self._row_widgets.pop(key).remove()
        if at_end or new:
            view.scroll_end(animate=False)
        room = self.query_one("#room", Static)
        room.display = in_room
        if in_room:
            panel = Text(f"room {self.room_code}\n", style="bold")
            for member in self.members:
                panel.append(f"{member}\n")
            room.update(panel)

    def refresh_meter(self) -> None:
        player = self.player
        trouble = getattr(self.source, "trouble", None) or getattr(player, "trouble", None)
        if trouble:  # one line at 80 columns: the trouble instead of the level
            self.query_one("#meter", Static).update(Text(trouble, style="bold red"))
            return
        level = min(1.0, self.cutter.level * 8)
        bar = "█" * int(level * 20)
        text = Text()
        text.append(f"mic {bar:<20} ")
        if self.source.muted:
            text.append("MUTED", style="bold red")
        else:
            state = self.cutter.state
            text.append("you are talking" if state == "speech" else "listening", style="bold")
        if player is None or not self.tts_wanted:
            text.append("  speech off", style="dim")
        elif getattr(player, "hold", False) and getattr(player, "clips", None) is not None:
            if player.clips.pending_s > 0:  # type: ignore[attr-defined]
                text.append("  speech waits for you", style="yellow")
        elif getattr(player, "audible", False):
            text.append("  ▶ playing translation", style="green")
        self.query_one("#meter", Static).update(text)

    def refresh_status(self) -> None:
        link = self.link
        text = Text()
        style = {"connected": "green", "failed": "bold red"}.get(link.state, "yellow")
        label = {"reconnecting": "OFFLINE, reconnecting"}.get(link.state, link.state)
        text.append(label, style=style)
        if link.detail:
            text.append(f" ({link.detail})", style=style)
        node = self.conn.assigned_node or "-"
        latency = f"{self.last_latency_ms:.0f} ms" if self.last_latency_ms is not None else "-"
        text.append(f"  {self.init.src_lang}->{self.init.tgt_lang}")
        if self.conn.core.streaming:
            text.append("  live", style="green")
        text.append(f"  latency {latency}")
        if self.last_timings:
            text.append(f" ({self.last_timings})")
        text.append(f"  node {node}")
        if self.conn.session_id:
            text.append(f"  session {self.conn.session_id}", style="dim")
        waiting = self.conn.core.queued
        if waiting:
            text.append(f"  {waiting} waiting to send", style="yellow")
        self.query_one("#status", Static).update(text)
        notice = self.query_one("#notice", Static)
        notice.display = bool(self.notice)
        notice.update(Text(self.notice))

    # --- keys ------------------------------------------------------------------------------

    async def action_cut(self) -> None:
        if self.streaming:
            await self.send_stream_events(self.cutter.cut_now_stream())
            return
        cut = self.cutter.cut_now()
        if cut is not None:
            await self.send_cut(cut.audio, manual=True)

    def action_mute(self) -> None:
        self.source.muted = not self.source.muted
        self.refresh_meter()

    def action_toggle_tts(self) -> None:
        """Speech off: later whole utterances ask the scheduler for no TTS at all (the node
        does not synthesise it) and what is queued stops; on: they ask for it again. A
        streamed utterance carries the same choice on its first `audio_chunk`."""
        if self.player is None:
            self.notice = "speech output is off for this run (--no-tts or no output device)"
        else:
            self.tts_wanted = not self.tts_wanted
            self.player.enabled = self.tts_wanted
            stop = getattr(self.player, "stop_playing", None)
            if not self.tts_wanted and callable(stop):
                stop()
        self.refresh_meter()
        self.refresh_status()

    def action_save(self) -> None:
        self.transcript_path.write_text(self.captions.transcript(), encoding="utf-8")
        self.notice = f"transcript saved to {self.transcript_path.resolve()}"
        self.refresh_status()

    async def action_quit_app(self) -> None:
        await self.conn.close()
        self.exit(0)


def run_app(**kwargs: Any) -> int:
    return LinguaApp(**kwargs).run() or 0
