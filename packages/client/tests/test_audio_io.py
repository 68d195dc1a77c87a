"""The player's clip queue and the stderr guard, without a sound device."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from lingua_client._audio_io import ClipQueue
from lingua_client._screen_guard import stderr_to_file


def play(clips: ClipQueue, blocks: int, size: int = 480) -> np.ndarray:
    out = []
    for _ in range(blocks):
        buf = np.empty(size, np.float32)
        clips.fill(buf)
        out.append(buf)
    return np.concatenate(out)


def test_every_sample_of_a_clip_is_played_and_silence_follows() -> None:
    clips = ClipQueue(24000)
    clip = np.linspace(0.1, 0.9, 24000 + 123, dtype=np.float32)  # not a multiple of a block
    clips.add(clip)
    played = play(clips, 60)
    assert np.array_equal(played[: clip.size], clip)  # the last 50 ms included
    assert not played[clip.size :].any()
    assert not clips.audible


def test_hold_plays_silence_and_keeps_the_position() -> None:
    clips = ClipQueue(24000)
    clip = np.linspace(0.1, 0.9, 4800, dtype=np.float32)
    clips.add(clip)
    first = play(clips, 2)
    assert clips.audible
    clips.hold = True
    assert not play(clips, 5).any()
    assert not clips.audible
    clips.hold = False
    rest = play(clips, 10)
    assert np.array_equal(np.concatenate([first, rest])[: clip.size], clip)


def test_fill_says_where_each_clip_starts() -> None:
    clips = ClipQueue(1000)
    clips.add(np.ones(300, np.float32))
    clips.add(np.ones(100, np.float32))
    out = np.empty(480, np.float32)
    assert clips.fill(out) == [0, 300]
    assert clips.fill(out) == []


def test_the_queue_is_bounded_in_seconds() -> None:
    clips = ClipQueue(1000, max_s=5.0)
    for _ in range(10):
        clips.add(np.ones(1000, np.float32))
    assert clips.pending_s == 5.0


def test_c_library_stderr_goes_to_the_log_file_not_the_screen(tmp_path: Path) -> None:
    log = tmp_path / "client.log"
    with stderr_to_file(log):
        os.write(2, b"ALSA lib pcm.c: underrun occurred\n")
    assert "underrun occurred" in log.read_text()


class ScriptedApp:
    """A test double of the app: records what would go to the notice line."""

    def __init__(self) -> None:
        self.notices: list[str] = []

    def show_log(self, line: str) -> None:
        self.notices.append(line)


def test_device_trouble_is_one_short_line_on_the_meter_not_repeated_in_the_notice() -> None:
    import logging

    from lingua_client._app import LogToApp
    from lingua_client._audio_io import Microphone

    app = ScriptedApp()
    handler = LogToApp(app)  # type: ignore[arg-type]
    logger = logging.getLogger("lingua")
    logger.addHandler(handler)
    try:
        mic = Microphone()
        mic._report("microphone unavailable; retrying", "Error opening InputStream: " + "x" * 80)
        logging.getLogger("lingua.client.app").warning("reconnect failed")
    finally:
        logger.removeHandler(handler)
    assert mic.trouble == "microphone unavailable; retrying"  # the library's words: log only
    assert app.notices == ["reconnect failed"]


class ScriptedSoundDevice:
    """A test double for the sounddevice module whose output stream fails with `error`."""

    class PortAudioError(Exception):
        pass

    def __init__(self, error: type[Exception]) -> None:
        self.error = error

    def query_devices(self, kind: str) -> dict[str, float]:
        return {"default_samplerate": 48000.0}

    def OutputStream(self, **_: object) -> None:  # sounddevice's name
        raise self.error("Error opening OutputStream")


def test_a_device_that_will_not_open_leaves_captions_only_and_a_bug_is_not_swallowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lingua_client import _audio_io as audio_io

    refusing = ScriptedSoundDevice(ScriptedSoundDevice.PortAudioError)
    monkeypatch.setattr(audio_io, "_sd", lambda: refusing)
    player = audio_io.Player()
    assert player.start() is False
    assert player.trouble == "no sound output; captions only"

    buggy = ScriptedSoundDevice(TypeError)  # a wrong argument is the app's bug, not the device's
    monkeypatch.setattr(audio_io, "_sd", lambda: buggy)
    with pytest.raises(TypeError):
        audio_io.Player().start()
