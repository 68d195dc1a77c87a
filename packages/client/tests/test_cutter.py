"""The microphone path: a WAV played in real-time-sized blocks through the real Silero VAD."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from lingua_client._cutter import CutterSettings, UtteranceCutter
from lingua_client._vad import SileroStream

from .client_support import clip
from .fake_mic import RecordedMic


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


def scripted_probability(w: np.ndarray) -> float:
    """A test double of the VAD: loud is speech, quiet is a pause."""
    return 0.9 if float(np.abs(w).max()) >= 0.5 else 0.0


def test_streaming_gives_each_utterance_while_it_is_spoken_with_the_same_audio_as_a_cut() -> None:
    window = 512
    rng = np.random.default_rng(5)
    speech = [(rng.uniform(0.5, 0.9, window * n)).astype(np.float32) for n in (40, 25)]
    gap = np.zeros(window * 30, np.float32)
    click = np.full(window * 2, 0.6, np.float32)  # 64 ms: under min_speech_ms
    audio = np.concatenate([gap, speech[0], gap, click, gap, speech[1], gap])
    cuts = UtteranceCutter(scripted_probability).feed(audio)
    streamer = UtteranceCutter(scripted_probability)
    events = []
    opened_at = []
    for start in range(0, audio.size, window):  # the microphone's 32 ms blocks
        got = streamer.feed_stream(audio[start : start + window])
        opened_at += [start for e in got if e.kind == "open"]
        events += got
    assert [e.kind for e in events if e.kind != "audio"] == ["open", "close"] * 2
    streamed: list[np.ndarray] = []
    for e in events:
        if e.kind == "open":
            streamed.append(e.audio)
        elif e.kind == "audio":
            streamed[-1] = np.concatenate([streamed[-1], e.audio])
    assert len(cuts) == len(streamed) == 2
    for cut, utterance in zip(cuts, streamed, strict=True):
        assert np.array_equal(cut.audio, utterance)
    first_speech = gap.size
    assert opened_at[0] < first_speech + 10 * window  # open after ~250 ms, not at the end


def test_a_manual_cut_while_streaming_closes_the_utterance_with_everything_said() -> None:
    window = 512
    loud = np.full(window * 20, 0.6, np.float32)
    streamer = UtteranceCutter(scripted_probability)
    events = streamer.feed_stream(loud)
    assert [e.kind for e in events] == ["open"]
    end = streamer.cut_now_stream()
    assert [e.kind for e in end] == ["audio", "close"]
    assert end[1].manual
    assert events[0].audio.size + end[0].audio.size == loud.size
    assert streamer.cut_now_stream() == []  # keeps listening: nothing said since
