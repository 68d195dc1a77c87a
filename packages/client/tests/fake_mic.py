"""A test double of the microphone: plays audio in 32 ms blocks, as the real stream delivers
them, then silence; `done` is set once the whole recording has been delivered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np


class RecordedMic:
    def __init__(
        self, audio: np.ndarray, block: int = 512, tail_s: float = 2.0, pace_s: float = 0.0
    ) -> None:
        self.audio = np.concatenate([audio, np.zeros(int(16000 * tail_s), np.float32)])
        self.block = block
        self.pace_s = pace_s
        self.muted = False
        self.paused = False
        self.done = asyncio.Event()
        self.hold = asyncio.Event()  # set: the recording ended, keep delivering nothing

    async def blocks(self) -> AsyncIterator[np.ndarray]:
        for start in range(0, self.audio.size, self.block):
            block = self.audio[start : start + self.block]
            if block.size < self.block:
                block = np.pad(block, (0, self.block - block.size))
            yield np.zeros_like(block) if self.muted else block
            await asyncio.sleep(self.pace_s)  # yield to the event loop like a real stream
        self.done.set()
        await self.hold.wait()
