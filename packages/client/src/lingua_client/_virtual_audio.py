"""A sound card made of software, to run the live app without one (and to test it).

A private PulseAudio (its own socket, passed to programs in `PULSE_SERVER`, so nothing else on
the machine is affected) with a pipe source as the default microphone and a null sink as the
default speaker, recorded from its monitor. PortAudio reaches it through ALSA's pulse plugin
(Debian: pulseaudio pulseaudio-utils libasound2-plugins). The pipe source is fed continuously,
silence and then speech at real-time pace, because a pipe source with no writer blocks
everyone recording from it.

    python -m lingua_client._virtual_audio --say a.wav --say b.wav --record heard.wav \\
        -- python -m lingua_client --mic

runs the command with the virtual devices, says the files into the microphone (after
`--start-s` of silence, with `--pause-s` between them, silence after) and writes what the
command played to `heard.wav` when it exits. Its exit status is the command's. The
end-to-end tests and `bench/bench_client.py` use `VirtualAudio` directly.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

MIC_RATE = 16000
SPEAKER_RATE = 48000
CHUNK_S = 0.02
"""The microphone is written in 20 ms pieces at real-time pace."""


PULSEAUDIO_FLAGS = ("--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no")
"""A private server in the foreground that lives until it is stopped."""
PAREC_FLAGS = (
    "--device=speaker.monitor",
    "--raw",
    "--format=s16le",
    f"--rate={SPEAKER_RATE}",
    "--channels=1",
    "--latency-msec=20",
)
"""The speaker's monitor as raw 16-bit mono at `SPEAKER_RATE`, in 20 ms fragments (the
resolution of `VirtualAudio.time_of`)."""


def _background(
    args: list[str], out: BinaryIO, stderr: BinaryIO | int, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """A tool of the sound card, started with no standard input (nothing it reads may block
    on ours)."""
    return subprocess.Popen(args, stdout=out, stderr=stderr, stdin=subprocess.DEVNULL, env=env)


def pulseaudio_missing() -> str | None:
    """Why a virtual sound card cannot be made here, or None."""
    for tool in ("pulseaudio", "parec", "pactl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install pulseaudio pulseaudio-utils)"
    if not Path("/usr/share/alsa/alsa.conf.d/pulse.conf").exists():
        return "the ALSA pulse plugin is not installed (apt-get install libasound2-plugins)"
    return None


@dataclass
class Said:
    """One piece of speech given to the microphone; `ended_at` (time.monotonic) is when its
    last sample went into the pipe, None until then."""

    samples: np.ndarray
    ended_at: float | None = None


class VirtualAudio:
    """`start()`, then `say(samples)` queues 16 kHz speech for the microphone, `recorded()` is
    what the speaker played at `SPEAKER_RATE`, `time_of(sample)` when the speaker played a
    sample; `kill()` ends the server as a crash would, `stop()` ends everything.

    `env` is what a program needs to use the devices: the environment with `PULSE_SERVER`."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.socket = work / "native"
        self.fifo = work / "mic.fifo"
        self.record_path = work / "speaker.raw"
        self.env = {**os.environ, "PULSE_SERVER": f"unix:{self.socket}"}
        # the server keeps its state in the work folder, not in the user's home
        self._server_env = {**self.env, "HOME": str(work), "XDG_RUNTIME_DIR": str(work)}
        self.server: subprocess.Popen[bytes] | None = None
        self.recorder: subprocess.Popen[bytes] | None = None
        self._queue: list[Said] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._feeder: threading.Thread | None = None
        self._record_t0 = 0.0

    @property
    def log_path(self) -> Path:
        return self.work / "pulseaudio.log"

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
        with self.log_path.open("ab") as log:
            self.server = _background(
                ["pulseaudio", "-n", "-F", str(script), "--log-target=stderr", *PULSEAUDIO_FLAGS],
                log,
                subprocess.STDOUT,
                self._server_env,
            )
        deadline = time.monotonic() + timeout_s
        while subprocess.run(["pactl", "info"], env=self.env, capture_output=True).returncode:
            if time.monotonic() > deadline or self.server.poll() is not None:
                raise RuntimeError(self.log_path.read_text()[-2000:])
            time.sleep(0.1)  # polling a server that is starting: nothing to wait on
        # module-pipe-source makes the FIFO itself (it refuses one that exists); our writer
        # keeps it fed from now on, so recording from it never blocks
        if not self.fifo.is_fifo():
            raise RuntimeError(self.log_path.read_text()[-2000:])
        self._feeder = threading.Thread(target=self._feed, daemon=True)
        self._feeder.start()
        self._start_recorder(deadline + timeout_s)

    def _start_recorder(self, deadline: float) -> None:
        with self.record_path.open("wb") as out:
            self.recorder = self._parec(out)
        # the monitor delivers its first samples 1-2 s after parec starts; a clip played
        # before that would lose its beginning in the recording (not in the player)
        while (size := self.record_path.stat().st_size) < SPEAKER_RATE // 10:
            if time.monotonic() > deadline or self.recorder.poll() is not None:
                raise RuntimeError("the speaker's monitor delivered nothing")
            time.sleep(0.005)  # polling a file that grows: nothing to wait on
        self._record_t0 = time.monotonic() - size / 2 / SPEAKER_RATE

    def _parec(self, out: BinaryIO) -> subprocess.Popen[bytes]:
        return _background(["parec", *PAREC_FLAGS], out, subprocess.DEVNULL, self.env)

    def say(self, samples: np.ndarray) -> Said:
        """Queue 16 kHz float speech; it is written after what is already queued."""
        item = Said(samples.astype(np.float32))
        with self._lock:
            self._queue.append(item)
        return item

    def pause(self, seconds: float) -> Said:
        return self.say(np.zeros(int(seconds * MIC_RATE), np.float32))

    @property
    def quiet(self) -> bool:
        """Everything queued has gone into the microphone."""
        with self._lock:
            return not self._queue

    def _feed(self) -> None:
        chunk = int(MIC_RATE * CHUNK_S)
        current: Said | None = None
        pos = 0
        next_at = time.monotonic()
        try:
            with open(self.fifo, "wb", buffering=0) as fifo:
                while not self._stop.is_set():
                    piece = np.zeros(chunk, np.float32)
                    with self._lock:
                        if current is None and self._queue:
                            current, pos = self._queue[0], 0
                    if current is not None:
                        take = current.samples[pos : pos + chunk]
                        piece[: take.size] = take
                        pos += take.size
                    fifo.write((np.clip(piece, -1, 1) * 32767).astype("<i2").tobytes())
                    if current is not None and pos >= current.samples.size:
                        current.ended_at = time.monotonic()
                        with self._lock:
                            self._queue.pop(0)
                        current = None
                    next_at += CHUNK_S
                    self._stop.wait(max(0.0, next_at - time.monotonic()))
        except (BrokenPipeError, FileNotFoundError):
            return  # the audio server is gone (killed on purpose by a test)

    def recorded(self) -> np.ndarray:
        data = self.record_path.read_bytes()
        return np.frombuffer(data[: len(data) // 2 * 2], "<i2").astype(np.float32) / 32768

    def recorded_until(self, when: float, timeout_s: float = 5.0) -> np.ndarray:
        """What the speaker played, once the recording reaches `when` (time.monotonic): the
        recorder runs in real time, a little behind."""
        deadline = time.monotonic() + timeout_s
        while self.time_of(self.record_path.stat().st_size // 2) < when:
            if time.monotonic() > deadline or self.recorder is None or self.recorder.poll():
                break  # a recorder that stopped: what there is
            time.sleep(0.01)  # polling a file that grows: nothing to wait on
        return self.recorded()

    def time_of(self, sample: int) -> float:
        """When (time.monotonic) the speaker played recorded sample number `sample`; within
        the monitor's 20 ms fragments."""
        return self._record_t0 + sample / SPEAKER_RATE

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
                    proc.wait(5)
        if self._feeder is not None:
            self._feeder.join(5)

    def __enter__(self) -> VirtualAudio:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def read_speech(path: Path) -> np.ndarray:
    """A recording as 16 kHz mono float32 (any format PyAV reads)."""
    from ._files import read_audio_16k

    return read_audio_16k(path)


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lingua_client._virtual_audio",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--say", action="append", type=Path, default=[], metavar="WAV")
    parser.add_argument(
        "--start-s", type=float, default=5.0, help="silence first, while the command starts"
    )
    parser.add_argument("--pause-s", type=float, default=1.5, help="silence between --say files")
    parser.add_argument("--record", type=Path, metavar="WAV", help="what the speaker played")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    if (missing := pulseaudio_missing()) is not None:
        print(f"virtual_audio: {missing}", file=sys.stderr)
        return 2
    speech = [read_speech(path) for path in args.say]
    with (
        tempfile.TemporaryDirectory(prefix="lingua-audio-") as work,
        VirtualAudio(Path(work)) as va,
    ):
        va.pause(args.start_s)
        for n, samples in enumerate(speech):
            if n:
                va.pause(args.pause_s)
            va.say(samples)
        try:
            code = subprocess.run(command, env=va.env).returncode
        except KeyboardInterrupt:
            code = 130
        if args.record is not None:
            with contextlib.suppress(OSError):
                played = va.recorded_until(time.monotonic() + 0.2)
                write_wav(args.record, played, SPEAKER_RATE)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
