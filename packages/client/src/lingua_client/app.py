"""The live-caption app: microphone -> VAD cuts -> scheduler -> captions and translated speech.

The audio source and the player are passed in, so tests drive the app with a WAV-playing test
double of the microphone and a silent player, against a real scheduler.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
from lingua_protocol import (
    Error,
    Message,
    RoomCreate,
    RoomCreateAck,
    RoomExpired,
    RoomJoin,
    RoomMembers,
    SessionInit,
    TranslationResult,
)
from lingua_protocol.audio import float32_to_pcm16
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Static

from .captions import Captions, Row
from .connection import SessionConnection, SessionRefused
from .cutter import CutterSettings, UtteranceCutter


class AudioSource(Protocol):
    muted: bool
    paused: bool

    def blocks(self) -> AsyncIterator[np.ndarray]: ...


class TTSPlayer(Protocol):
    enabled: bool

    def enqueue(self, pcm16: bytes, rate: int) -> None: ...


STATE_STYLE = {
    "pending": "yellow",
    "done": "green",
    "empty": "dim",
    "error": "red",
    "missing": "red",
}


class LinguaApp(App[int]):
    CSS = """
    #captions { height: 1fr; }
    #side { width: 32; border-left: solid $primary; padding: 0 1; }
    #meter { height: 3; padding: 0 1; }
    #status { height: 1; background: $boost; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "cut", "cut now"),
        Binding("m", "mute", "mute mic"),
        Binding("t", "toggle_tts", "TTS on/off"),
        Binding("c", "save", "save transcript"),
        Binding("q", "quit_app", "quit"),
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
    ) -> None:
        super().__init__()
        self.url = url
        self.init = init
        self.source = source
        self.player = player
        self.captions = Captions()
        if probability is None:
            from .vad import SileroStream

            probability = SileroStream()
        self.cutter = UtteranceCutter(probability, cutter_settings or CutterSettings())
        self.room_create = room_create
        self.room_code = room_code
        self.display_name = display_name
        self.full_duplex = full_duplex
        self.transcript_path = transcript_path or Path("lingua-transcript.txt")
        self.conn: SessionConnection | None = None
        self.members: list[str] = []
        self.last_latency_ms: float | None = None
        self.last_timings: str = ""
        self.sending = False
        self.notice = ""

    # --- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(show_clock=True)
        with Horizontal():
            with Vertical():
                yield Static("", id="meter")
                yield DataTable(id="captions", zebra_stripes=True, cursor_type="row")
            yield Static("", id="side")
        yield Static("connecting...", id="status")
        yield Footer()

    async def on_mount(self) -> None:
        self.title = "Lingua"
        self.sub_title = f"{self.init.src_lang} -> {self.init.tgt_lang}"
        table = self.query_one("#captions", DataTable)
        table.add_columns("#", "who", "said", "translation", "state")
        self.conn = SessionConnection(self.url, self.init, self.on_message)
        try:
            await self.conn.start()
        except SessionRefused as exc:
            self.notice = f"session refused: {exc}"
            self.refresh_status()
            return
        except OSError as exc:
            self.notice = f"cannot reach the scheduler at {self.url}: {exc}"
            self.refresh_status()
            return
        if self.room_create:
            await self.conn.send(
                RoomCreate(
                    session_id=self.conn.session_id,
                    display_name=self.display_name,
                    preferred_lang=self.init.tgt_lang,
                )
            )
        elif self.room_code:
            await self.conn.send(
                RoomJoin(
                    session_id=self.conn.session_id,
                    room_code=self.room_code,
                    display_name=self.display_name,
                    preferred_lang=self.init.tgt_lang,
                )
            )
        self.refresh_status()
        self.run_worker(self.capture(), exclusive=True, group="capture")

    # --- audio -------------------------------------------------------------------------------

    async def capture(self) -> None:
        async for block in self.source.blocks():
            if self.player is not None and not self.full_duplex:
                playing = getattr(self.player, "playing", None)  # the sounddevice Player has it
                self.source.paused = bool(playing is not None and playing.is_set())
            for cut in self.cutter.feed(block):
                await self.send_cut(cut.audio, manual=cut.manual)
            self.refresh_meter()

    async def send_cut(self, audio: np.ndarray, manual: bool) -> None:
        if self.conn is None or audio.size == 0:
            return
        self.sending = True
        index = await self.conn.send_audio(
            float32_to_pcm16(audio), manual_cut=manual, spoken_until=time.perf_counter()
        )
        self.captions.pending(index)
        self.sending = False
        self.refresh_captions()

    # --- messages from the scheduler ---------------------------------------------------------

    def on_message(self, message: Message) -> None:
        latency = None
        if self.conn is not None and hasattr(message, "utterance_index"):
            latency = self.conn.stats.latency_ms.get(getattr(message, "utterance_index", -1))
        row = self.captions.apply(message, latency)
        if isinstance(message, TranslationResult):
            if row is not None and row.speaker == "me" and latency is not None:
                self.last_latency_ms = latency
            t = message.service_timings
            if t is not None:
                parts = [
                    f"{k} {v:.0f}"
                    for k, v in (("asr", t.asr_ms), ("nmt", t.nmt_ms), ("tts", t.tts_ms))
                    if v is not None
                ]
                self.last_timings = " ".join(parts)
            audio = message.tts_audio
            if self.player is not None and audio is not None and message.tts_sample_rate:
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
            self.members = []
        elif isinstance(message, Error) and message.utterance_index is None:
            self.notice = f"{message.code}: {message.message}"
        self.refresh_captions()
        self.refresh_status()

    # --- rendering ---------------------------------------------------------------------------

    def refresh_captions(self) -> None:
        table = self.query_one("#captions", DataTable)
        table.clear()
        rows: list[Row] = self.captions.ordered()
        for row in rows + self.captions.room_rows:
            style = STATE_STYLE.get(row.state, "")
            table.add_row(
                str(row.index),
                row.speaker,
                row.source or "…",
                row.translation or ("…" if row.state == "pending" else ""),
                f"[{style}]{row.state}[/]",
            )
        if rows:
            table.move_cursor(row=table.row_count - 1)
        side = self.query_one("#side", Static)
        room = f"room {self.room_code}\n" + "\n".join(self.members) if self.room_code else ""
        side.update(room or "no room\n(--room-create or --room CODE)")

    def refresh_meter(self) -> None:
        level = min(1.0, self.cutter.level * 8)
        bar = "█" * int(level * 30)
        state = "sending" if self.sending else self.cutter.state
        mute = " [red]MUTED[/]" if self.source.muted else ""
        tts = "on" if self.player is not None and self.player.enabled else "off"
        self.query_one("#meter", Static).update(f"mic {bar:<30} [b]{state}[/]{mute}   TTS {tts}")

    def refresh_status(self) -> None:
        conn = self.conn
        link = "[green]connected[/]" if conn and conn.connected.is_set() else "[red]offline[/]"
        sid = (conn.session_id or "")[:8] if conn else ""
        node = (conn.assigned_node if conn else None) or "-"
        latency = f"{self.last_latency_ms:.0f} ms" if self.last_latency_ms is not None else "-"
        text = f"{link}  session {sid}  node {node}  latency {latency}  {self.last_timings}"
        if self.notice:
            text += f"  | {self.notice}"
        self.query_one("#status", Static).update(text)

    # --- keys --------------------------------------------------------------------------------

    async def action_cut(self) -> None:
        cut = self.cutter.cut_now()
        if cut is not None:
            await self.send_cut(cut.audio, manual=True)

    def action_mute(self) -> None:
        self.source.muted = not self.source.muted
        self.refresh_meter()

    def action_toggle_tts(self) -> None:
        if self.player is not None:
            self.player.enabled = not self.player.enabled
        self.refresh_meter()

    def action_save(self) -> None:
        self.transcript_path.write_text(self.captions.transcript(), encoding="utf-8")
        self.notice = f"transcript saved to {self.transcript_path}"
        self.refresh_status()

    async def action_quit_app(self) -> None:
        if self.conn is not None:
            await self.conn.close()
        self.exit(0)


def run_app(**kwargs: Any) -> int:
    return LinguaApp(**kwargs).run() or 0
