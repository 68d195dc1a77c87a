"""The agent's shell for streams: opens them, feeds them, runs their passes on the workers.

The decisions are elsewhere: which stream goes next is `rotation.Rotation`, what a pass does
is `stream_job.StreamJob`, what is sent is the session's. This class only moves work between
the event loop and the inference pool: every pass (and opening a stream, which decodes its
audio so far) runs in the pool, never on the loop, and at most `workers` passes run at once,
so whole-utterance jobs in the same pool still get workers.

Ownership: `run()` is the dispatcher task; the agent creates it and cancels it on shutdown.
A pass that is running when its stream ends (cancel, disconnect) finishes in its thread and
its output is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from lingua_protocol import AsrPartial, ErrorCode, JobAssign, JobAudio, JobResult

from .._jobs import Key
from .recognizer import StreamConfig
from .rotation import Rotation
from .stream_job import StreamFailed, StreamJob

log = logging.getLogger("lingua.node.streaming")

Opener = Callable[[JobAssign], StreamJob]
"""Opens a stream for a job (blocking: decodes its audio so far); raises `StreamFailed`."""
Report = Callable[[Key, "AsrPartial | JobResult | StreamFailed"], Awaitable[None]]


@dataclass
class PassTiming:
    """When each pass of a stream started, for the status display and the benchmark."""

    key: Key
    started: float
    final: bool
    seconds: float


class StreamRunner:
    def __init__(
        self,
        opener: Opener,
        pool: Executor,
        workers: int,
        report: Report,
        *,
        config: StreamConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_pass: Callable[[PassTiming], None] | None = None,
    ) -> None:
        """`report` gets each partial, each final result and each failure (a
        `StreamFailed`), on the event loop. `workers`: passes at once."""
        self.opener = opener
        self.pool = pool
        self.workers = max(1, workers)
        self.report = report
        self.config = config or StreamConfig()
        self.clock = clock
        self.on_pass = on_pass or (lambda timing: None)
        self.rotation: Rotation[Key] = Rotation()
        self.streams: dict[Key, StreamJob] = {}
        self.opening: set[Key] = set()
        self.pending: dict[Key, list[JobAudio]] = {}
        """Chunks that came while the stream was being opened (in order), at most
        `max_pending_bytes` of audio per stream (the stream's audio limit as 16-bit PCM)."""
        self.max_pending_bytes = int(self.config.max_audio_s * 16000 * 2)
        self.pending_bytes: dict[Key, int] = {}
        self.running = 0
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    # --- from the session's actions (event loop) ---------------------------------------------

    def start(self, job: JobAssign) -> None:
        key = (job.job_id, job.attempt_id)
        self.opening.add(key)
        self.pending[key] = []
        self._spawn(self._open(key, job))

    def feed(self, key: Key, chunk: JobAudio) -> None:
        if key in self.opening:
            held = self.pending_bytes.get(key, 0) + len(chunk.payload)
            self.pending_bytes[key] = held
            if held > self.max_pending_bytes:
                self.end(key)
                failed = StreamFailed(
                    ErrorCode.AUDIO_DECODE_FAILED,
                    "streamed audio passed the node's limit while the stream opened",
                )
                self._spawn(self.report(key, failed))
                return
            self.pending[key].append(chunk)
            return
        stream = self.streams.get(key)
        if stream is None:
            return
        try:
            paused = stream.feed(chunk.payload, chunk.audio_format, chunk.sample_rate)
        except StreamFailed as exc:
            self.end(key)
            self._spawn(self.report(key, exc))
            return
        if chunk.is_final:
            self.rotation.close(key)
        elif paused:
            log.debug("job=%s the speaker paused: a pass now", key[0])
            self.rotation.hurry(key, self.clock())
        self._wake.set()

    def end(self, key: Key) -> None:
        """Forget a stream (cancelled, failed, disconnected)."""
        self.streams.pop(key, None)
        self.opening.discard(key)
        self.pending.pop(key, None)
        self.pending_bytes.pop(key, None)
        self.rotation.remove(key)
        self._wake.set()

    def end_all(self) -> None:
        for key in [*self.streams, *self.opening]:
            self.end(key)

    async def close(self) -> None:
        """Shutdown: forget every stream and wait for the running passes' tasks."""
        self.end_all()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # --- the dispatcher -----------------------------------------------------------------------

    async def run(self) -> None:
        """Starts due passes while workers are free; sleeps until the next is due or
        something changes (a stream opens, a final chunk, a pass ends)."""
        while True:
            now = self.clock()
            while self.running < self.workers:
                picked = self.rotation.next(now, self._final_may_overlap)
                if picked is None:
                    break
                key, final = picked
                stream = self.streams[key]
                if not final and not stream.recognizer.has_new_audio():
                    log.debug("job=%s nothing new to hear", key[0])
                    self.rotation.postpone(key, now)
                    continue
                self.running += 1
                self._spawn(self._pass(key, stream, final, now))
            self._wake.clear()
            wait = self.rotation.wait_s(self.clock())
            if self.running >= self.workers:
                wait = None  # a pass's end wakes us
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    def _final_may_overlap(self, key: Key) -> bool:
        stream = self.streams.get(key)
        return stream is None or stream.recognizer.endpoint_running is None

    async def _open(self, key: Key, job: JobAssign) -> None:
        loop = asyncio.get_running_loop()
        try:
            stream = await loop.run_in_executor(self.pool, self.opener, job)
        except StreamFailed as exc:
            self.end(key)
            await self.report(key, exc)
            return
        except Exception as exc:  # a bug must still end in an answer for this job
            log.exception("job=%s could not open its stream", key[0])
            self.end(key)
            await self.report(key, StreamFailed(ErrorCode.INTERNAL_ERROR, f"{exc!r}"[:512]))
            return
        if key not in self.opening:
            return  # cancelled while it opened
        self.opening.discard(key)
        self.streams[key] = stream
        received_s = stream.recognizer.received_ms / 1000
        first_s = self.config.first_update_ms / 1000
        now = self.clock()
        self.rotation.add(key, stream.interval_s, now + max(0.0, first_s - received_s))
        if job.stream_closed:
            self.rotation.close(key)
        self.pending_bytes.pop(key, None)
        for chunk in self.pending.pop(key, []):
            self.feed(key, chunk)
        self._wake.set()

    async def _pass(self, key: Key, stream: StreamJob, final: bool, started: float) -> None:
        loop = asyncio.get_running_loop()
        out: AsrPartial | JobResult | StreamFailed | None
        try:
            work = stream.finish if final else stream.update
            try:
                out = await loop.run_in_executor(self.pool, work)
            except StreamFailed as exc:
                out = exc
            self.on_pass(PassTiming(key, started, final, self.clock() - started))
        finally:
            self.running -= 1
            self._wake.set()
        if self.streams.get(key) is not stream:
            return  # ended (or finished by an overlapping final pass) while the pass ran
        if final or isinstance(out, StreamFailed):
            self.end(key)
        else:
            # until a stream has shown text, its passes come at the first-pass pace: the
            # first words are what the speaker waits for most
            eager = self.config.first_update_ms / 1000 if stream.revision == 0 else None
            self.rotation.done(key, started, eager)
        if out is not None:
            await self.report(key, out)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def buffered_s(self) -> float:
        """Audio held by open streams, in seconds (status display)."""
        return sum(s.recognizer.received_ms for s in self.streams.values()) / 1000
