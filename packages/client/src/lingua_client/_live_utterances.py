"""Carry the cutter's streaming events (`open`, `audio`, `close`) to a `SessionConnection`:
the one piece of the streaming shell the live app and `--file --stream` share.

What it decides beyond passing events on:

- a stream at its longest (`append_stream` refuses the audio: the client's 30 s or the ack's
  `max_stream_ms`) is closed there and the audio opens the next utterance, as the cutter's
  own maximum length does;
- a stream that ended early in an error for its index (the scheduler refused it, or the
  session ended for good) takes no more audio: the rest of that utterance is not sent, and its
  row already says why. The next `open` starts the next utterance as usual.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
from lingua_protocol import PipelineConfig, float32_to_pcm16

from ._connection import SessionConnection
from ._cutter import StreamEvent

log = logging.getLogger("lingua.client.stream")


class LiveUtterances:
    """Opens, feeds and closes streamed utterances as the cutter's events say. `pipeline`,
    when set, is asked at each opening for the utterance's own stages (None: the
    session's); it travels on the utterance's first `audio_chunk`."""

    def __init__(
        self,
        conn: SessionConnection,
        pipeline: Callable[[], PipelineConfig | None] | None = None,
    ) -> None:
        self.conn = conn
        self.pipeline = pipeline
        self.current: int | None = None
        """The local index of the utterance being spoken, if one is open."""

    async def _open(self) -> int:
        return await self.conn.open_stream(pipeline=self.pipeline() if self.pipeline else None)

    async def apply(self, events: list[StreamEvent]) -> list[int]:
        """Carry out the events; returns the local indexes of the utterances they opened."""
        opened: list[int] = []
        for event in events:
            if event.kind == "open":
                if self.current is not None:  # never happens with the cutter: close it anyway
                    await self._close(manual=False)
                self.current = await self._open()
                opened.append(self.current)
                await self._append(event.audio, opened)
            elif event.kind == "audio":
                await self._append(event.audio, opened)
            else:
                await self._close(manual=event.manual)
        return opened

    async def _append(self, audio: np.ndarray, opened: list[int]) -> None:
        if self.current is None or audio.size == 0:
            return
        pcm = float32_to_pcm16(audio)
        if self.conn.append_stream(self.current, pcm):
            return
        if not self.conn.core.stream_is_open(self.current):
            return  # ended early in an error for its index: the rest of it is not sent
        log.info("utterance %d reached the longest stream; the next one goes on", self.current)
        await self._close(manual=False)
        self.current = await self._open()
        opened.append(self.current)
        self.conn.append_stream(self.current, pcm)

    async def _close(self, manual: bool) -> None:
        if self.current is None:
            return
        index, self.current = self.current, None
        await self.conn.close_stream(index, manual_cut=manual, spoken_until=time.perf_counter())
