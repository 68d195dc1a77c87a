"""A private PulseAudio for tests: a pipe source as the default microphone (fed continuously,
silence then speech at real-time pace, because a pipe source with no writer blocks
recording) and a null sink as the default speaker (recorded from its monitor). Its own socket
via `PULSE_SERVER`, so nothing else on the machine is affected; PortAudio reaches it through
ALSA's pulse plugin (Debian: pulseaudio pulseaudio-utils libasound2-plugins alsa-utils)."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

MIC_RATE = 16000
SPEAKER_RATE = 48000
CHUNK_S = 0.02


def pulseaudio_missing() -> str | None:
    """Why the audio-stack tests cannot run here, or None."""
    for tool in ("pulseaudio", "parec", "pactl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install pulseaudio pulseaudio-utils)"
    if not any(Path(p).exists() for p in ("/usr/share/alsa/alsa.conf.d/pulse.conf",)):
        return "the ALSA pulse plugin is not installed (apt-get install libasound2-plugins)"
    return None


class PrivatePulse:
    """Start with `start()`; `say(samples)` queues 16 kHz speech for the microphone;
    `recorded()` is what the speaker played, at `SPEAKER_RATE`; `kill()` ends the server."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.socket = work / "native"
        self.fifo = work / "mic.fifo"
        self.record_path = work / "speaker.raw"
        self.env = {
            **os.environ,
            "PULSE_SERVER": f"unix:{self.socket}",
            "HOME": str(work),
            "XDG_RUNTIME_DIR": str(work),
        }
        self.server: subprocess.Popen[bytes] | None = None
        self.recorder: subprocess.Popen[bytes] | None = None
        self._speech: list[np.ndarray] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._feeder: threading.Thread | None = None

    def start(self, timeout_s: float = 15.0) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        script = self.work / "default.pa"
        script.write_text(
            f"load-module module-native-protocol-unix auth-anonymous=1 socket={self.socket}\n"
            f"load-module module-pipe-source source_name=mic file={self.fifo} "
            f"format=s16le rate={MIC_RATE} channels=1\n"
            f"load-module module-null-sink sink_name=speaker rate={SPEAKER_RATE} channels=1\n"
            "set-default-source mic\nset-default-sink speaker\n"
        )
        with (self.work / "pulseaudio.log").open("ab") as log:
            self.server = subprocess.Popen(
                [
                    "pulseaudio",
                    "-n",
                    "-F",
                    str(script),
                    "--daemonize=no",
                    "--exit-idle-time=-1",
                    "--use-pid-file=no",
                    "--log-target=stderr",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        deadline = time.monotonic() + timeout_s
        while subprocess.run(["pactl", "info"], env=self.env, capture_output=True).returncode:
            if time.monotonic() > deadline or self.server.poll() is not None:
                raise RuntimeError((self.work / "pulseaudio.log").read_text()[-2000:])
            time.sleep(0.1)  # polling a server that is starting: nothing to wait on
        # module-pipe-source makes the FIFO itself (it refuses one that exists); our writer
        # keeps it fed from now on, so recording from it never blocks
        if not self.fifo.is_fifo():
            raise RuntimeError((self.work / "pulseaudio.log").read_text()[-2000:])
        self._feeder = threading.Thread(target=self._feed, daemon=True)
        self._feeder.start()
        self.recorder = subprocess.Popen(
            [
                "parec",
                "--device=speaker.monitor",
                "--raw",
                "--format=s16le",
                f"--rate={SPEAKER_RATE}",
                "--channels=1",
                "--latency-msec=20",
                "--file-format=raw",
            ],
            stdout=self.record_path.open("wb"),
            stderr=subprocess.DEVNULL,
            env=self.env,
        )
        # the monitor delivers its first samples 1-2 s after parec starts; a clip played
        # before that loses its beginning (the "missing 40 ms" of an early tone test)
        while self.record_path.stat().st_size < SPEAKER_RATE // 10:
            if time.monotonic() > deadline + timeout_s or self.recorder.poll() is not None:
                raise RuntimeError("the speaker's monitor delivered nothing")
            time.sleep(0.05)  # polling a file that grows: nothing to wait on

    def say(self, samples: np.ndarray) -> None:
        with self._lock:
            self._speech.append(samples.astype(np.float32))

    def _feed(self) -> None:
        chunk = int(MIC_RATE * CHUNK_S)
        pending = np.zeros(0, np.float32)
        next_at = time.monotonic()
        try:
            with open(self.fifo, "wb", buffering=0) as fifo:
                while not self._stop.is_set():
                    with self._lock:
                        if pending.size == 0 and self._speech:
                            pending = self._speech.pop(0)
                    piece, pending = pending[:chunk], pending[chunk:]
                    piece = np.pad(piece, (0, chunk - piece.size))
                    fifo.write((np.clip(piece, -1, 1) * 32767).astype("<i2").tobytes())
                    next_at += CHUNK_S
                    self._stop.wait(max(0.0, next_at - time.monotonic()))
        except BrokenPipeError:
            return  # the audio server is gone (killed on purpose by a test)

    def recorded(self) -> np.ndarray:
        data = self.record_path.read_bytes()
        return np.frombuffer(data[: len(data) // 2 * 2], "<i2").astype(np.float32) / 32768

    def kill(self) -> None:
        """End the audio server as a crash would."""
        if self.server is not None and self.server.poll() is None:
            self.server.kill()
            self.server.wait(10)

    def stop(self) -> None:
        self._stop.set()
        for proc in (self.recorder, self.server):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if self._feeder is not None:
            self._feeder.join(5)
