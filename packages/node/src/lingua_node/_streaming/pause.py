"""Notices, from the audio alone, that the speaker just paused: the moment for a pass.

A stream's passes come at its interval, but the pass that matters most is the one after
the last word: if it has run by the time the final chunk arrives, its hypothesis is the
final transcript and the result goes out without another decode (`recognizer.finish`). So
when the audio turns quiet after speech for `pause_ms`, the stream is made due at once
instead of waiting for its interval (at most once per pause).

Energy only, on the event loop (a mean of squares per 20 ms frame): cheap enough to run on
every chunk. It is a trigger, not a decision: a pause it misses (loud background noise)
only means the final pass decodes; a pause it imagines only means one pass comes early.
Quiet is below `QUIET_RATIO` of the loudest frame heard so far (and under `QUIET_FLOOR`
absolute), so a quiet speaker is not taken for silence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from lingua_protocol import FloatAudio

FRAME = 320  # 20 ms at 16 kHz
QUIET_RATIO = 0.1
QUIET_FLOOR = 0.02


@dataclass
class PauseDetector:
    pause_ms: int = 250
    peak: float = 0.0
    quiet_frames: int = 0
    heard_speech: bool = False
    fired: bool = False
    _rest: FloatAudio | None = None

    def feed(self, audio: FloatAudio) -> bool:
        """True when this audio completes a pause after speech (once per pause)."""
        if self._rest is not None and self._rest.size:
            audio = np.concatenate([self._rest, audio])
        whole = audio.size - audio.size % FRAME
        self._rest = audio[whole:]
        if whole == 0:
            return False
        rms = np.sqrt(np.mean(np.square(audio[:whole].reshape(-1, FRAME)), axis=1))
        started = False
        for level in rms.tolist():
            self.peak = max(self.peak, level)
            quiet = level < min(QUIET_FLOOR, QUIET_RATIO * self.peak) or self.peak == 0.0
            if not quiet:
                self.heard_speech = True
                self.quiet_frames = 0
                self.fired = False
                continue
            self.quiet_frames += 1
            if self.heard_speech and not self.fired and self.quiet_frames * 20 >= self.pause_ms:
                self.fired = True
                started = True
        return started


def frame_levels(audio: FloatAudio) -> FloatAudio:
    """RMS of each whole 20 ms frame."""
    whole = audio.size - audio.size % FRAME
    if whole == 0:
        return np.zeros(0, dtype=np.float32)
    return np.sqrt(np.mean(np.square(audio[:whole].reshape(-1, FRAME)), axis=1))


def trailing_quiet(audio: FloatAudio, peak: float) -> int:
    """Samples of quiet at the end of `audio` (whole frames, by the rule above), given the
    loudest frame heard so far."""
    levels = frame_levels(audio)
    limit = min(QUIET_FLOOR, QUIET_RATIO * peak)
    loud = np.flatnonzero(levels >= limit)
    quiet_frames = levels.size - (int(loud[-1]) + 1) if loud.size else levels.size
    return quiet_frames * FRAME + (audio.size % FRAME if quiet_frames else 0)
