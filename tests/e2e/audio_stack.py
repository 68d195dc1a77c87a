"""The live app as a user runs it, for tests and `bench/bench_client.py`: the real
`python -m lingua_client --mic` in a real terminal (tmux, 80x24) on a virtual sound card
(`lingua_client._virtual_audio`: a private PulseAudio with a pipe-source microphone and a
null-sink speaker), against a real scheduler and node. Skips need tmux and PulseAudio
(Debian: tmux pulseaudio pulseaudio-utils libasound2-plugins)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lingua_client import (
    MIC_RATE,
    SPEAKER_RATE,
    VirtualAudio,
    pulseaudio_missing,
    read_speech,
)

ROOT = Path(__file__).resolve().parents[2]
SPEECH = ROOT / "tests" / "data" / "speech"

__all__ = ["MIC_RATE", "SPEAKER_RATE", "VirtualAudio", "pulseaudio_missing", "read_speech"]


def stack_missing() -> str | None:
    """Why the real-audio-stack tests cannot run here, or None."""
    if shutil.which("tmux") is None:
        return "tmux is not installed (apt-get install tmux)"
    return pulseaudio_missing()


@dataclass
class Sentence:
    file: str
    text: str
    samples: np.ndarray


def sentences() -> list[Sentence]:
    """The six committed English sentences, 16 kHz."""
    return [
        Sentence(item["file"], item["text"], read_speech(SPEECH / item["file"]))
        for item in json.loads((SPEECH / "sentences.json").read_text())
    ]


class TerminalApp:
    """A command in a tmux session of its own (own socket, `width`x`height`), whose screen
    is read with `screen()` and typed into with `keys()`. The pane stays after the command
    exits, so a crash leaves its last screen to read."""

    def __init__(self, work: Path, width: int = 80, height: int = 24) -> None:
        self.work = work
        self.socket = work / "tmux.sock"
        self.width, self.height = width, height

    def _tmux(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(
            ["tmux", "-S", str(self.socket), *args], capture_output=True, text=True, timeout=10
        )
        if check and done.returncode:
            raise RuntimeError(f"tmux {args[0]}: {done.stderr.strip()}")
        return done.stdout

    def start(self, command: list[str], env: dict[str, str], cwd: Path) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        conf = self.work / "tmux.conf"
        conf.write_text("set -g remain-on-exit on\nset -g status off\n")
        subprocess.run(
            [
                "tmux",
                "-S",
                str(self.socket),
                "-f",
                str(conf),
                "new-session",
                "-d",
                "-x",
                str(self.width),
                "-y",
                str(self.height),
                "-c",
                str(cwd),
                shlex.join(command),
            ],
            env={**env, "TERM": "xterm-256color"},
            check=True,
            timeout=10,
        )

    def screen(self) -> str:
        """The pane as the user sees it: `height` lines of text."""
        return self._tmux("capture-pane", "-p")

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", *keys)

    def exited(self) -> bool:
        return self._tmux("display-message", "-p", "#{pane_dead}", check=False).strip() == "1"

    def wait_for(self, pattern: str, timeout_s: float) -> str:
        """The screen once `pattern` (a regex, over the pane's lines joined by spaces)
        appears on it; raises with the last screen."""
        deadline = time.monotonic() + timeout_s
        while True:
            shown = self.screen()
            if re.search(pattern, flat(shown)):
                return shown
            if time.monotonic() > deadline or self.exited():
                raise TimeoutError(f"{pattern!r} never appeared; the screen:\n{shown}")
            time.sleep(0.05)  # polling a screen: nothing to wait on

    def stop(self) -> None:
        self._tmux("kill-server", check=False)


def flat(screen: str) -> str:
    """The screen's text as one line (wrapped captions read across line ends)."""
    return " ".join(line.strip() for line in screen.splitlines() if line.strip())


def app_command(url: str, log_file: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "lingua_client",
        "--mic",
        "--scheduler",
        url,
        "--src",
        "en",
        "--tgt",
        "en",
        "--log-file",
        str(log_file),
        "--log-level",
        "INFO",
        *extra,
    ]


def loud_segments(
    audio: np.ndarray, rate: int, gap_s: float = 0.3, level: float = 0.02
) -> list[tuple[int, int]]:
    """(start, end) sample ranges where something is heard; gaps shorter than `gap_s` (the
    pauses inside a spoken sentence) do not split a segment."""
    block = rate // 100
    n = audio.size // block
    rms = np.sqrt(np.mean(audio[: n * block].reshape(n, block) ** 2, axis=1))
    loud = np.flatnonzero(rms > level)
    if loud.size == 0:
        return []
    segments: list[tuple[int, int]] = []
    start = prev = int(loud[0])
    for i in loud[1:]:
        if (i - prev) * block > gap_s * rate:
            segments.append((start * block, (prev + 1) * block))
            start = int(i)
        prev = int(i)
    segments.append((start * block, (prev + 1) * block))
    return segments
