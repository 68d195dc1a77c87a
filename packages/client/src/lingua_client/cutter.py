"""Cut a live 16 kHz stream into utterances: speech starts above `start_threshold`, ends after
`hangover_ms` below `end_threshold`, and is cut anyway at `max_utterance_s`. Plain state
driven by blocks of samples and a probability function, so it is tested with files."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

RATE = 16000
WINDOW = 512


@dataclass
class Cut:
    audio: np.ndarray
    manual: bool
    reason: str  # "end_of_speech" | "max_length" | "manual"


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

    def feed(self, block: np.ndarray) -> list[Cut]:
        """Take any number of samples; return the utterances they completed."""
        s = self.settings
        self._pending = np.concatenate([self._pending, block.astype(np.float32)])
        cuts: list[Cut] = []
        hang = max(1, int(s.hangover_ms * RATE / 1000 / WINDOW))
        pre = max(0, int(s.pre_roll_ms * RATE / 1000 / WINDOW))
        max_windows = int(s.max_utterance_s * RATE / WINDOW)
        while self._pending.size >= WINDOW:
            window, self._pending = self._pending[:WINDOW], self._pending[WINDOW:]
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
                continue
            self._speech.append(window)
            if p < s.end_threshold:
                self._silent_windows += 1
            else:
                self._silent_windows = 0
                self._voiced_windows += 1
            if self._silent_windows >= hang:
                cut = self._emit("end_of_speech", manual=False)
                if cut is not None:
                    cuts.append(cut)
            elif len(self._speech) >= max_windows:
                cut = self._emit("max_length", manual=False, keep_speaking=True)
                if cut is not None:
                    cuts.append(cut)
        return cuts

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
