"""The microphone path: a WAV played in real-time-sized blocks through the real Silero VAD."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from client_support import clip
from fake_mic import RecordedMic
from lingua_client.cutter import CutterSettings, UtteranceCutter
from lingua_client.vad import SileroStream


async def cuts_of(audio: np.ndarray, settings: CutterSettings | None = None) -> list:  # type: ignore[type-arg]
    mic = RecordedMic(audio)
    cutter = UtteranceCutter(SileroStream(), settings or CutterSettings())
    cuts = []

    async def run() -> None:
        async for block in mic.blocks():
            cuts.extend(cutter.feed(block))

    task = asyncio.create_task(run())
    await mic.done.wait()
    task.cancel()
    return cuts


async def test_pauses_between_sentences_cut_one_utterance_each() -> None:
    pause = np.zeros(16000, np.float32)
    names = ["weather.wav", "report.wav", "market.wav"]
    audio = np.concatenate([x for n in names for x in (clip(n, trim_pads=True), pause)])
    cuts = await cuts_of(audio)
    assert len(cuts) == 3
    assert all(c.reason == "end_of_speech" and not c.manual for c in cuts)
    for cut, name in zip(cuts, names, strict=True):
        expected = clip(name, trim_pads=True).size
        assert expected * 0.9 < cut.audio.size < expected + 16000  # speech + hangover + pre-roll


async def test_twenty_seconds_of_continuous_speech_is_cut_at_the_maximum_length() -> None:
    names = ["river.wav", "languages.wav", "train.wav", "report.wav", "weather.wav", "market.wav"]
    audio = np.concatenate([clip(n, trim_pads=True) for n in names])
    assert audio.size / 16000 >= 20
    cuts = await cuts_of(audio, CutterSettings(hangover_ms=800))
    assert cuts[0].reason == "max_length"
    assert cuts[0].audio.size == pytest.approx(15 * 16000, abs=512)
    assert sum(c.audio.size for c in cuts) >= audio.size * 0.9


async def test_silence_and_noise_cut_nothing_and_manual_cut_needs_speech() -> None:
    rng = np.random.default_rng(3)
    cutter = UtteranceCutter(SileroStream())
    assert cutter.feed((rng.standard_normal(16000 * 3) * 0.003).astype(np.float32)) == []
    assert cutter.cut_now() is None
    cutter.feed(clip("weather.wav", trim_pads=True)[: 16000 * 2])
    cut = cutter.cut_now()
    assert cut is not None
    assert cut.manual
    assert cut.reason == "manual"


def test_a_manual_cut_starts_the_next_utterance_with_the_audio_that_follows() -> None:
    """Scripted speech probability (a test double of the VAD): loud speech, the key press,
    then quieter speech (between the end and start thresholds) that goes on for 1 s."""
    window = 512
    loud = np.full(window * 20, 0.5, np.float32)
    quiet = np.full(window * 30, 0.2, np.float32)
    silence = np.zeros(window * 20, np.float32)

    def probability(w: np.ndarray) -> float:
        level = float(np.abs(w).max())
        return 0.9 if level >= 0.5 else 0.4 if level >= 0.2 else 0.0

    cutter = UtteranceCutter(probability)
    assert cutter.feed(loud) == []
    first = cutter.cut_now()
    assert first is not None
    assert first.manual
    assert first.audio.size == loud.size
    [second] = cutter.feed(np.concatenate([quiet, silence]))
    assert not second.manual
    assert np.array_equal(second.audio[: quiet.size], quiet)  # not one sample lost
