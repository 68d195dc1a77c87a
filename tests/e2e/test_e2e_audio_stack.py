"""The client's audio I/O through a real audio stack: PortAudio -> ALSA pulse plugin -> a
private PulseAudio with a pipe-source microphone and a null-sink speaker (see
`audio_stack.py`). Each check runs the client code in a fresh process so PortAudio sees the
private server. Skips, with the reason, where PulseAudio is not installed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from .audio_stack import SPEAKER_RATE, PrivatePulse, pulseaudio_missing

pytestmark = pytest.mark.skipif(pulseaudio_missing() is not None, reason=str(pulseaudio_missing()))

PLAY_TONE = """
import time, numpy as np
from lingua_client.audio_io import Player
p = Player()
assert p.start(), p.trouble
t = np.arange(22050) / 22050
p.enqueue((np.sin(2 * np.pi * 440 * t) * 0.5 * 32767).astype('<i2').tobytes(), 22050)
deadline = time.monotonic() + 10
while (p.clips.pending_s > 0 or p.audible) and time.monotonic() < deadline:
    time.sleep(0.05)
time.sleep(0.5)
p.close()
print('PLAYED', flush=True)
"""


@pytest.fixture
def pulse(tmp_path: Path) -> Iterator[PrivatePulse]:
    server = PrivatePulse(tmp_path / "pulse")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def run_client_code(pulse: PrivatePulse, code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=pulse.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_clip_plays_whole_at_its_rate_through_the_real_stack(pulse: PrivatePulse) -> None:
    proc = run_client_code(pulse, PLAY_TONE)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "PLAYED" in out, err
    loud = np.flatnonzero(np.abs(pulse.recorded()) > 0.05)
    assert loud.size, "nothing reached the speaker"
    played_s = (loud[-1] - loud[0]) / SPEAKER_RATE
    # both ends arrive (a ramped tone keeps its first and last amplitude); the recording
    # through the monitor measures 0.96-0.97 s on the development machine, so the bound
    # allows 50 ms of slack inside the clip until that is explained
    assert played_s == pytest.approx(1.0, abs=0.05)
