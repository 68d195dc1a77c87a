"""Microphone capture and TTS playback through sounddevice, kept apart so the app can be run
(and tested) with any other source of 16 kHz blocks and any other player.

Device trouble never ends the app: `trouble` holds one line for the status bar (no input
device, the audio server went away, no output device) and captions keep working.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

RATE = 16000
BLOCK = 512
SILENT_MIC_S = 1.5
"""A microphone that delivers nothing for this long is reported as lost (PortAudio does not
always report a dead audio server; the callback simply stops)."""
REOPEN_EVERY_S = 2.0
"""How often a lost microphone is opened again."""
OUTPUT_LATENCY_S = 0.15
"""The output stream's buffer. PortAudio's default ("low", 40 ms through ALSA's pulse plugin)
underruns whenever the Python callback is late, which on a machine also running Whisper is
often; ALSA recovers from an underrun by flushing what was queued, so a clip lost 20 ms to
half a second (measured through a real PulseAudio). 150 ms never underran there and delays
the first sound of each clip by no more than that."""
INPUT_LATENCY_S = 0.1
"""The input stream's buffer, for the same reason: an overflow drops what the user said."""
MAX_QUEUED_CLIPS_S = 120.0
"""Translated speech waiting to be played, in seconds; older clips are dropped beyond it and
the drop is logged (a user who holds the floor for minutes does not pile up memory)."""

log = logging.getLogger("lingua.client.audio")


class NoAudioDevice(Exception):
    """No usable input or output device: the user gets one line, not a traceback."""


def _sd() -> Any:
    try:
        import sounddevice
    except OSError as exc:  # PortAudio itself is missing
        raise NoAudioDevice(
            "no audio support on this machine (PortAudio is missing; on Debian/Ubuntu "
            "`apt-get install libportaudio2`). Use --file a.wav to translate recordings."
        ) from exc
    return sounddevice


def _device_errors(sd: Any) -> tuple[type[Exception], ...]:
    """What opening, using or closing a stream raises when the device is the trouble:
    PortAudio's own error (device gone or busy, a rate it refuses) and sounddevice's
    ValueError for a device or setting that does not exist. Anything else is a bug in the app
    and is not caught. `sd` is the imported module (`_sd()`), so that the library is still
    loaded only when a device is wanted."""
    return (sd.PortAudioError, ValueError)


def check_devices(need_input: bool, need_output: bool) -> None:
    sd = _sd()
    for kind, needed in (("input", need_input), ("output", need_output)):
        if not needed:
            continue
        try:
            sd.query_devices(kind=kind)
        except Exception as exc:
            hint = "use --file a.wav instead" if kind == "input" else "use --no-tts"
            raise NoAudioDevice(f"no audio {kind} device found ({exc}); {hint}.") from exc


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


class Microphone:
    """16 kHz mono float32 blocks from the default input device, as an async iterator.

    When the device stops delivering (audio server killed, USB microphone pulled) `trouble`
    says so, silence is delivered so the rest of the app keeps running, and the device is
    opened again every `REOPEN_EVERY_S` until it works."""

    def __init__(self, block: int = BLOCK) -> None:
        self.block = block
        self.muted = False
        self.paused = False
        self.trouble: str | None = None

    async def blocks(self) -> AsyncIterator[np.ndarray]:
        sd = _sd()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[np.ndarray] = asyncio.Queue(maxsize=200)
        silence = np.zeros(self.block, np.float32)

        def callback(indata: np.ndarray, _frames: int, _time: Any, status: Any) -> None:
            if status.input_overflow:
                log.info("audio input overflow: the microphone lost samples")
            block = indata[:, 0].copy()
            loop.call_soon_threadsafe(_put, queue, block)

        while True:
            try:
                stream = sd.InputStream(
                    samplerate=RATE,
                    channels=1,
                    dtype="float32",
                    blocksize=self.block,
                    latency=INPUT_LATENCY_S,
                    callback=callback,
                )
                stream.start()
            except _device_errors(sd) as exc:
                self._report("microphone unavailable; retrying", _one_line(exc))
                for _ in range(int(REOPEN_EVERY_S * RATE / self.block)):
                    await asyncio.sleep(self.block / RATE)
                    yield silence
                continue
            try:
                while True:
                    try:
                        async with asyncio.timeout(SILENT_MIC_S):
                            block = await queue.get()
                    except TimeoutError:
                        self._report("microphone stopped delivering audio (device lost?)")
                        break
                    if self.trouble is not None:
                        log.warning("microphone is back")
                        self.trouble = None
                    if self.muted or self.paused:
                        block = np.zeros_like(block)
                    yield block
            finally:
                await asyncio.to_thread(_close_quietly, stream)
            yield silence

    def _report(self, text: str, detail: str | None = None) -> None:
        _report(self, text, detail)


def _report(device: Microphone | Player, text: str, detail: str | None) -> None:
    """`text` is one short line for the screen (the meter and the notice line, both one line
    at 80 columns); the library's own words, often long, go to the log file only."""
    if device.trouble != text:
        log.warning("%s", text, extra={"shown_on_meter": True})
        if detail:
            log.info("%s: %s", text, detail)
    device.trouble = text


def _close_quietly(stream: Any) -> None:
    try:
        stream.abort()
        stream.close()
    except _device_errors(_sd()) as exc:  # loaded already: the stream came from it
        log.info("closing the audio stream failed: %s", _one_line(exc))


def _put(queue: asyncio.Queue[np.ndarray], block: np.ndarray) -> None:
    if queue.full():
        queue.get_nowait()  # drop the oldest block rather than fall ever further behind
    queue.put_nowait(block)


class ClipQueue:
    """The samples waiting to be played, shared between the event loop (appends whole clips)
    and the PortAudio callback (takes frames). Plain state, tested without a device.

    `hold`: play silence and keep the position (the user is talking in half-duplex mode);
    `audible`: the last callback played clip samples, not silence."""

    def __init__(self, rate: int, max_s: float = MAX_QUEUED_CLIPS_S) -> None:
        self.rate = rate
        self.max_frames = int(max_s * rate)
        self.hold = False
        self.audible = False
        self._clips: deque[np.ndarray] = deque()
        self._pos = 0
        self._frames = 0
        self._lock = threading.Lock()

    @property
    def pending_s(self) -> float:
        with self._lock:
            return (self._frames - self._pos) / self.rate

    def add(self, samples: np.ndarray) -> None:
        with self._lock:
            self._clips.append(samples.astype(np.float32))
            self._frames += samples.size
            while self._frames - self._pos > self.max_frames and len(self._clips) > 1:
                dropped = self._clips.popleft()
                self._frames -= dropped.size
                self._pos = 0
                log.warning(
                    "dropped %.1f s of translated speech: too much waiting",
                    dropped.size / self.rate,
                )

    def clear(self) -> None:
        with self._lock:
            self._clips.clear()
            self._pos = self._frames = 0

    def fill(self, out: np.ndarray) -> list[int]:
        """Write the next `out.size` frames (silence where there is nothing to play); returns
        the frame offsets in `out` where a clip's first sample went."""
        out[:] = 0.0
        if self.hold:
            self.audible = False
            return []
        written = 0
        starts: list[int] = []
        with self._lock:
            while written < out.size and self._clips:
                clip = self._clips[0]
                if self._pos == 0:
                    starts.append(written)
                take = min(out.size - written, clip.size - self._pos)
                out[written : written + take] = clip[self._pos : self._pos + take]
                written += take
                self._pos += take
                if self._pos >= clip.size:
                    self._clips.popleft()
                    self._frames -= clip.size
                    self._pos = 0
        self.audible = written > 0
        return starts


class Player:
    """Plays TTS clips one after another, never overlapping, through one output stream that
    stays open: clips are resampled to the stream's rate and followed by silence, so the end
    of a clip is never cut off by the device draining (the underrun that lost the last ~50 ms)
    and "audible" is known per 20 ms block, not guessed from a queue."""

    def __init__(self, rate: int | None = None) -> None:
        self.enabled = True
        self.trouble: str | None = None
        self.rate = rate
        self.clips: ClipQueue | None = None
        self.clips_started = 0
        self._stream: Any = None

    @property
    def audible(self) -> bool:
        return self.clips is not None and self.clips.audible

    @property
    def hold(self) -> bool:
        return self.clips is not None and self.clips.hold

    @hold.setter
    def hold(self, value: bool) -> None:
        if self.clips is not None:
            self.clips.hold = value

    def start(self) -> bool:
        """Open the output device; False (and `trouble` set) when there is none."""
        try:
            sd = _sd()
        except NoAudioDevice as exc:
            self._report("no sound output; captions only", _one_line(exc))
            return False
        try:
            rate = self.rate or int(sd.query_devices(kind="output")["default_samplerate"])
            clips = ClipQueue(rate)

            def callback(outdata: np.ndarray, _frames: int, when: Any, status: Any) -> None:
                if status.output_underflow:
                    log.info("audio output underflow")
                for offset in clips.fill(outdata[:, 0]):
                    self.clips_started += 1
                    # when it will be heard: PortAudio's own estimate of the way to the DAC
                    delay_s = max(0.0, when.outputBufferDacTime - when.currentTime)
                    log.info(
                        "clip %d starts playing in %.3f s",
                        self.clips_started,
                        delay_s + offset / rate,
                    )

            stream = sd.OutputStream(
                samplerate=rate,
                channels=1,
                dtype="float32",
                blocksize=rate // 50,
                latency=OUTPUT_LATENCY_S,
                callback=callback,
            )
            stream.start()
        except _device_errors(sd) as exc:
            self._report("no sound output; captions only", _one_line(exc))
            return False
        self.rate, self.clips, self._stream = rate, clips, stream
        self.trouble = None
        return True

    def check(self) -> None:
        """Called now and then by the app: notices a stream the audio server took away."""
        stream = self._stream
        if stream is not None and not stream.active:
            self._report("sound output stopped (audio device lost?); captions only")
            self._stream = None
            threading.Thread(target=_close_quietly, args=(stream,), daemon=True).start()

    def enqueue(self, pcm16: bytes, rate: int) -> None:
        if not self.enabled or not pcm16:
            return
        if self.clips is None and (self._stream is None and not self.start()):
            return
        assert self.clips is not None
        assert self.rate is not None
        samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0
        if rate != self.rate:
            from lingua_protocol import resample

            samples = resample(samples, rate, self.rate)
        self.clips.add(samples)

    def stop_playing(self) -> None:
        """Drop what is queued (TTS switched off)."""
        if self.clips is not None:
            self.clips.clear()

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            _close_quietly(stream)

    def _report(self, text: str, detail: str | None = None) -> None:
        _report(self, text, detail)
