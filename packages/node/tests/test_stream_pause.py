"""The pause trigger and the trailing-quiet measure of streaming recognition, on synthetic
audio (`streaming/pause.py`)."""

from __future__ import annotations

import numpy as np
from lingua_node._streaming.pause import PauseDetector, trailing_quiet

RATE = 16000


def tone(seconds: float, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (level * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def silence(seconds: float, level: float = 0.0) -> np.ndarray:
    return np.full(int(seconds * RATE), level, dtype=np.float32)


def chunks(audio: np.ndarray, seconds: float = 0.1) -> list[np.ndarray]:
    step = int(seconds * RATE)
    return [audio[i : i + step] for i in range(0, audio.size, step)]


def test_a_pause_after_speech_fires_once_when_it_reaches_pause_ms() -> None:
    detector = PauseDetector(pause_ms=200)
    audio = np.concatenate([silence(0.5), tone(1.0), silence(0.6)])
    fired = [i for i, c in enumerate(chunks(audio)) if detector.feed(c)]
    assert fired == [16]  # 0.5 s + 1.0 s + 0.2 s of quiet: the 17th 100 ms chunk ends there


def test_silence_before_any_speech_is_no_pause_and_speech_again_rearms_it() -> None:
    detector = PauseDetector(pause_ms=200)
    assert not any(detector.feed(c) for c in chunks(silence(1.0)))
    audio = np.concatenate([tone(0.5), silence(0.3), tone(0.5), silence(0.3)])
    assert sum(detector.feed(c) for c in chunks(audio)) == 2


def test_a_quiet_speaker_is_not_taken_for_silence() -> None:
    detector = PauseDetector(pause_ms=200)
    audio = np.concatenate([tone(0.5, level=0.01), silence(0.3, level=0.0)])
    assert sum(detector.feed(c) for c in chunks(audio)) == 1


def test_trailing_quiet_counts_the_quiet_after_the_last_loud_frame() -> None:
    audio = np.concatenate([tone(1.0), silence(0.3)])
    assert trailing_quiet(audio, peak=0.3) == int(0.3 * RATE)
    assert trailing_quiet(tone(1.0), peak=0.3) == 0
