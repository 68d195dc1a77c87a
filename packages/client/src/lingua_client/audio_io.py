"""Microphone capture and TTS playback through sounddevice, kept apart so the app can be run
(and tested) with any other source of 16 kHz blocks and any other player."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

RATE = 16000
BLOCK = 512


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


class Microphone:
    """16 kHz mono float32 blocks from the default input device, as an async iterator."""

    def __init__(self, block: int = BLOCK) -> None:
        self.block = block
        self.muted = False
        self.paused = False

    async def blocks(self) -> AsyncIterator[np.ndarray]:
        sd = _sd()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[np.ndarray] = asyncio.Queue(maxsize=200)

        def callback(indata: np.ndarray, _frames: int, _time: Any, _status: Any) -> None:
            block = indata[:, 0].copy()
            loop.call_soon_threadsafe(_put, queue, block)

        with sd.InputStream(
            samplerate=RATE, channels=1, dtype="float32", blocksize=self.block, callback=callback
        ):
            while True:
                block = await queue.get()
                if self.muted or self.paused:
                    block = np.zeros_like(block)
                yield block


def _put(queue: asyncio.Queue[np.ndarray], block: np.ndarray) -> None:
    if queue.full():
        queue.get_nowait()  # drop the oldest block rather than fall ever further behind
    queue.put_nowait(block)


class Player:
    """Plays TTS clips one after another at their own sample rate, never overlapping."""

    def __init__(self) -> None:
        self.enabled = True
        self.playing = threading.Event()
        self._queue: asyncio.Queue[tuple[bytes, int]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def enqueue(self, pcm16: bytes, rate: int) -> None:
        if self.enabled and pcm16:
            self._queue.put_nowait((pcm16, rate))
            if self._task is None:
                self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            pcm, rate = await self._queue.get()
            self.playing.set()
            try:
                await asyncio.to_thread(self.play_blocking, pcm, rate)
            finally:
                if self._queue.empty():
                    self.playing.clear()

    def play_blocking(self, pcm16: bytes, rate: int) -> None:
        sd = _sd()
        samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0
        sd.play(samples, samplerate=rate, blocking=True)
