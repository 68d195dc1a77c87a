"""Live app figures: from the end of speech to the caption and to the first sound of the
translated speech, half-duplex (the default) and full-duplex, measured in the same run.

The real `python -m lingua_client --mic` runs in a terminal (tmux, 80x24) on a virtual sound
card (`lingua_client._virtual_audio`) against a real scheduler and node (Whisper base on CPU,
Piper), the harness of `tests/e2e/test_e2e_audio_stack.py`. The six committed English
sentences are said into the microphone at real-time pace with 1.5 s pauses, in each mode.

- end of speech: when the sentence's last loud sample went into the microphone's pipe;
- caption: when the app received the answer (its log line, at INFO);
- first sound: the first loud sample of that answer's clip in the speaker's recording,
  searched from PortAudio's own estimate of when the clip reaches the device.

Half-duplex holds the translated speech while the user talks, so with short pauses the clips
play only in the pauses and fall behind one another: its "first sound" figure is that wait.

    python bench/bench_client.py [--models-dir DIR] [--pause-s 1.5]

Needs tmux, pulseaudio, pulseaudio-utils and libasound2-plugins (Debian).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from audio_stack import (  # noqa: E402  (the harness lives with the end-to-end tests)
    MIC_RATE,
    SPEAKER_RATE,
    TerminalApp,
    VirtualAudio,
    app_command,
    flat,
    sentences,
    stack_missing,
)
from e2e_support import one_node_cluster  # noqa: E402
from lingua_client import LocalCluster  # noqa: E402

LOG_TIME = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO lingua\.client[.\w]*: "
ANSWERED = re.compile(LOG_TIME + r"utterance (\d+) answered", re.M)
CLIP = re.compile(LOG_TIME + r"clip (\d+) starts playing in ([\d.]+) s", re.M)
LOUD = 0.02


def wall(stamp: str) -> float:
    """A log line's time (local time, milliseconds) as seconds since the epoch."""
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def end_of_speech(samples: np.ndarray, ended_at: float) -> float:
    """When (time.monotonic) the last loud sample went into the pipe, given when the last
    sample did."""
    last = int(np.flatnonzero(np.abs(samples) > LOUD)[-1])
    return ended_at - (samples.size - 1 - last) / MIC_RATE


def first_sound(audio: VirtualAudio, recording: np.ndarray, from_t: float) -> float | None:
    """When (time.monotonic) the speaker first played something loud at or after `from_t`."""
    start = max(0, int((from_t - audio.time_of(0)) * SPEAKER_RATE))
    loud = np.flatnonzero(np.abs(recording[start:]) > LOUD)
    return audio.time_of(start + int(loud[0])) if loud.size else None


def run_mode(
    audio: VirtualAudio, cluster: LocalCluster, work: Path, full_duplex: bool, pause_s: float
) -> tuple[list[float], list[float]]:
    """Seconds from the end of each sentence to its caption and to its first sound."""
    log = work / f"client-{'full' if full_duplex else 'half'}.log"
    app = TerminalApp(work / f"tmux-{'full' if full_duplex else 'half'}")
    extra = ["--full-duplex"] if full_duplex else []
    app.start(app_command(cluster.session_url, log, *extra), audio.env, work)
    try:
        app.wait_for(r"\bconnected\b.*en->en", timeout_s=60)
        said = []
        for item in sentences():
            audio.pause(pause_s)
            said.append((item, audio.say(item.samples)))
        deadline = time.monotonic() + 180
        while True:
            text = log.read_text(errors="replace")
            busy = re.search(r"playing translation|speech waits|talking|…", flat(app.screen()))
            done = len(ANSWERED.findall(text)) >= len(said) and len(CLIP.findall(text)) >= len(said)
            if audio.quiet and done and not busy:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"not every sentence was answered and played:\n{text[-2000:]}")
            time.sleep(0.2)  # polling the app's log: nothing to wait on
        to_monotonic = time.monotonic() - time.time()
        answered = {int(i): wall(t) + to_monotonic for t, i in ANSWERED.findall(text)}
        clips = [wall(t) + to_monotonic + float(d) for t, _, d in CLIP.findall(text)]
        # the last clip's first words are in the recording before the app is told to quit
        recording = audio.recorded_until(max(clips) + 1.0)
        app.keys("q")
    finally:
        app.stop()
    captions, sounds = [], []
    for index, (item, said_item) in enumerate(said):
        assert said_item.ended_at is not None
        eos = end_of_speech(item.samples, said_item.ended_at)
        captions.append(answered[index] - eos)
        heard = first_sound(audio, recording, clips[index] - 0.02)
        if heard is not None:
            sounds.append(heard - eos)
    return captions, sounds


def summary(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:<22} -"
    return (
        f"{name:<22} median {statistics.median(values):.2f} s  "
        f"min {min(values):.2f}  max {max(values):.2f}  (n={len(values)})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models-dir", type=Path, help="default: the node's own models folder")
    parser.add_argument("--pause-s", type=float, default=1.5, help="silence between sentences")
    args = parser.parse_args(argv)
    if (missing := stack_missing()) is not None:
        print(f"bench_client: {missing}", file=sys.stderr)
        return 2
    figures: dict[str, tuple[list[float], list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-client-") as tmp:
        work = Path(tmp)
        with (
            VirtualAudio(work / "pulse") as audio,
            one_node_cluster(work / "cluster", args.models_dir) as cluster,
        ):
            for mode, full_duplex in (("half-duplex", False), ("full-duplex", True)):
                figures[mode] = run_mode(audio, cluster, work, full_duplex, args.pause_s)
    print(f"six sentences, {args.pause_s} s pauses, one node (Whisper base on CPU, Piper)")
    for mode, (captions, sounds) in figures.items():
        print(f"{mode}:")
        print("  " + summary("end of speech->caption", captions))
        print("  " + summary("end of speech->sound", sounds))
        if len(sounds) == len(captions):
            gaps = [s - c for s, c in zip(sounds, captions, strict=True)]
            print("  " + summary("caption->sound", gaps))
    half, full = figures["half-duplex"], figures["full-duplex"]
    for label, i in (("caption", 0), ("first sound", 1)):
        if half[i] and full[i]:
            ratio = statistics.median(half[i]) / statistics.median(full[i])
            print(f"half/full, {label} (medians): x{ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
