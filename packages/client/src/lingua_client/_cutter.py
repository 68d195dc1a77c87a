"""Cut a live 16 kHz stream into utterances: speech starts above `start_threshold`, ends after
`hangover_ms` below `end_threshold`, and is cut anyway at `max_utterance_s`. Plain state
driven by blocks of samples and a probability function, so it is tested with files.

Two ways to read it: `feed` returns whole utterances once they end (whole-utterance mode);
`feed_stream` returns the same utterances as they happen (streaming mode): `open` once the
speech has lasted `min_speech_ms` (so a click never opens a stream), `audio` as it comes,
`close` where `feed` would cut. The audio of one utterance is the same either way.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

RATE = 16000
WINDOW = 512


@dataclass
class Cut:
    audio: np.ndarray
    manual: bool
    reason: str  # "end_of_speech" | "max_length" | "manual"


@dataclass
class StreamEvent:
    """One step of an utterance as it happens: `open` (with the audio so far, pre-roll
    included), `audio` (what followed), `close` (no audio; `manual` and `reason` as in `Cut`)."""

    kind: Literal["open", "audio", "close"]
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    manual: bool = False
    reason: str = ""


@dataclass
class CutterSettings:
    start_threshold: float = 0.5
    end_threshold: float = 0.35
    hangover_ms: int = 500
    max_utterance_s: float = 15.0
    pre_roll_ms: int = 200
    min_speech_ms: int = 250


@dataclass
class UtteranceCutter:
    probability: Callable[[np.ndarray], float]
    settings: CutterSettings = field(default_factory=CutterSettings)
    state: str = "silence"  # "silence" | "speech"
    level: float = 0.0  # RMS of the last window, for the level meter
    _pending: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    _pre: deque[np.ndarray] = field(default_factory=deque)
    _speech: list[np.ndarray] = field(default_factory=list)
    _silent_windows: int = 0
    _voiced_windows: int = 0
    _streamed_windows: int | None = None
    """Streaming: how many windows of `_speech` went out in events (None: not opened)."""

    def feed(self, block: np.ndarray) -> list[Cut]:
        """Take any number of samples; return the utterances they completed."""
        self._pending = np.concatenate([self._pending, block.astype(np.float32)])
        cuts: list[Cut] = []
        while self._pending.size >= WINDOW:
            window, self._pending = self._pending[:WINDOW], self._pending[WINDOW:]
            cut, _ = self._step(window)
            if cut is not None:
                cuts.append(cut)
        return cuts

    def feed_stream(self, block: np.ndarray) -> list[StreamEvent]:
        """Take any number of samples; return what they did to the current utterance
        (consecutive `audio` events are merged, so a 32 ms block gives at most a few)."""
        self._pending = np.concatenate([self._pending, block.astype(np.float32)])
        events: list[StreamEvent] = []
        while self._pending.size >= WINDOW:
            window, self._pending = self._pending[:WINDOW], self._pending[WINDOW:]
            cut, ended = self._step(window)
            if ended:
                events += self._stream_end(cut)
            self._stream_progress(events)
        return _merged(events)

    def cut_now_stream(self) -> list[StreamEvent]:
        """`cut_now` for streaming: the events that end the current utterance (an `open`
        first when the speech was too short to have opened it)."""
        if self.state != "speech":
            return []
        return self._stream_end(self.cut_now())

    def _stream_end(self, cut: Cut | None) -> list[StreamEvent]:
        opened, self._streamed_windows = self._streamed_windows, None
        if cut is None or (opened is None and cut.audio.size == 0):
            return []  # a click, or a second key press with nothing said since the first
        if opened is None:
            return [
                StreamEvent("open", cut.audio),
                StreamEvent("close", manual=cut.manual, reason=cut.reason),
            ]
        rest = cut.audio[opened * WINDOW :]
        return [
            StreamEvent("audio", rest),
            StreamEvent("close", manual=cut.manual, reason=cut.reason),
        ]

    def _stream_progress(self, events: list[StreamEvent]) -> None:
        if self.state != "speech":
            return
        done = self._streamed_windows
        if done is None:
            voiced_ms = self._voiced_windows * WINDOW * 1000 / RATE
            if voiced_ms >= self.settings.min_speech_ms and self._speech:
                events.append(StreamEvent("open", np.concatenate(self._speech)))
                self._streamed_windows = len(self._speech)
            return
        if len(self._speech) > done:
            events.append(StreamEvent("audio", np.concatenate(self._speech[done:])))
            self._streamed_windows = len(self._speech)

    def _step(self, window: np.ndarray) -> tuple[Cut | None, bool]:
        """One 32 ms window: the utterance it completed (None for a click), and whether an
        utterance ended here at all."""
        s = self.settings
        hang = max(1, int(s.hangover_ms * RATE / 1000 / WINDOW))
        pre = max(0, int(s.pre_roll_ms * RATE / 1000 / WINDOW))
        max_windows = int(s.max_utterance_s * RATE / WINDOW)
        self.level = float(np.sqrt(np.mean(window**2)))
        p = self.probability(window)
        if self.state == "silence":
            self._pre.append(window)
            while len(self._pre) > pre + 1:
                self._pre.popleft()
            if p >= s.start_threshold:
                self.state = "speech"
                self._speech = list(self._pre)
                self._pre.clear()
                self._silent_windows = 0
                self._voiced_windows = 1
            return None, False
        self._speech.append(window)
        if p < s.end_threshold:
            self._silent_windows += 1
        else:
            self._silent_windows = 0
            self._voiced_windows += 1
        if self._silent_windows >= hang:
            return self._emit("end_of_speech", manual=False), True
        if len(self._speech) >= max_windows:
            return self._emit("max_length", manual=False, keep_speaking=True), True
        return None, False

    def cut_now(self) -> Cut | None:
        """The user pressed cut: whatever speech is buffered goes now, and the audio that
        follows starts the next utterance at once (a speaker who goes on talking loses no
        word waiting for the VAD to hear a new start). If they had stopped, that next piece
        holds no speech and is dropped at the next pause like any click."""
        if self.state != "speech":
            return None
        return self._emit("manual", manual=True, keep_speaking=True)

    def _emit(self, reason: str, manual: bool, keep_speaking: bool = False) -> Cut | None:
        audio = np.concatenate(self._speech) if self._speech else np.zeros(0, np.float32)
        voiced_ms = self._voiced_windows * WINDOW * 1000 / RATE
        self._speech = []
        self._silent_windows = 0
        self._voiced_windows = 1 if keep_speaking and not manual else 0
        self.state = "speech" if keep_speaking else "silence"
        if voiced_ms < self.settings.min_speech_ms and not manual:
            return None  # a click or a cough, not an utterance
        return Cut(audio, manual, reason)


def _merged(events: list[StreamEvent]) -> list[StreamEvent]:
    out: list[StreamEvent] = []
    for e in events:
        if out and e.kind == "audio" and out[-1].kind in ("open", "audio"):
            last = out[-1]
            out[-1] = StreamEvent(last.kind, np.concatenate([last.audio, e.audio]))
        else:
            out.append(e)
    return out
