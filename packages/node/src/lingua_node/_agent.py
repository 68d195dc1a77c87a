"""The node's connection to the scheduler: the I/O shell over `session.NodeSession`.

The session decides (register, ack or refuse, cancel, drain, shutdown, binary or JSON); this
shell owns the WebSocket, the timers and the worker threads and carries the decisions out.
Inference runs in a thread pool bounded by `max_jobs`, so the event loop stays free to
heartbeat and ack while a long ASR runs. The connection is re-made with exponential backoff
and jitter whenever it drops; jobs that were running then are discarded, since the scheduler
has already handed them to other nodes.

Streaming jobs (`job_assign` with `stream`) run through `streaming.workers.StreamRunner` on
the same pool: it opens each stream, feeds it the `job_audio` the session let through, and
runs its passes in a fair rotation; the session decides what is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psutil
from lingua_protocol import (
    AsrPartial,
    JobAssign,
    JobResult,
    NodeHeartbeat,
    NodeRegister,
    PairingCode,
    ProtocolError,
    ResourceUsage,
    UrlRotation,
    parse_scheduler_message,
    split_urls,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ._health import Withdrawal
from ._jobs import JobBook, Key, StageGate
from ._session import (
    Action,
    Beat,
    Close,
    EndStream,
    FeedStream,
    KeepCredential,
    NodeSession,
    RegisterRefused,
    Reload,
    Send,
    StartJob,
    StartStream,
)
from ._streaming.stream_job import StreamFailed
from ._streaming.workers import Opener, StreamRunner

log = logging.getLogger("lingua.node.agent")


@dataclass
class NodeStats:
    """What the status display shows; written only from the event loop."""

    connected: bool = False
    status: str = "starting"
    status_reason: str | None = None
    connects: int = 0
    last_error: str | None = None
    pairing_code: str | None = None
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=20))
    heartbeats: list[float] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)
    """Models taken out after failing jobs in a row ("asr whisper-base"), for the display."""


class FatalNodeError(Exception):
    """The scheduler refused this node for a reason retrying cannot fix (e.g. a bad token)."""


class NodeAgent:
    def __init__(
        self,
        register: Callable[[], NodeRegister],
        run_job: Callable[[JobAssign, StageGate], JobResult],
        *,
        url: str,
        node_id: str,
        max_jobs: int,
        heartbeat_interval_s: float = 15.0,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 30.0,
        binary_audio: bool = True,
        request_pairing: bool = False,
        on_change: Callable[[], None] | None = None,
        refresh: Callable[[], bool] | None = None,
        credential: str | None = None,
        on_credential: Callable[[str], None] | None = None,
        withdrawals: Callable[[], list[Withdrawal]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        open_stream: Opener | None = None,
        max_streams: int = 0,
    ) -> None:
        """`url`: the scheduler's /ws/node endpoint, or several comma-separated (instances of
        one cluster): a failed or dropped connection moves on to the next (`scheduler_urls`).
        `credential`: the node's secret (see `identity.credential`), presented in every
        register; a credential the scheduler hands back (to a node that had none) replaces
        it and goes to `on_credential` to be kept. `run_job` gets the job and the gate it
        asks between stages (cancelled? past `timeout_ms`?). `withdrawals`: models taken out
        after failing jobs (`BackendHealth.take_withdrawals`), asked after every job. `clock`:
        what job deadlines are measured on (seconds, monotonic). `open_stream`: opens a
        streaming job (`streaming.stream_job.StreamJob.open`); with it the node holds up to
        `max_streams` streams (advertise the same number in the register)."""
        self.register = register
        self.run_job = run_job
        self.urls = UrlRotation(split_urls(url))
        self.node_id = node_id
        self.session = NodeSession(
            node_id,
            max_jobs,
            binary_audio=binary_audio,
            request_pairing=request_pairing,
            credential=credential,
            max_streams=max_streams if open_stream is not None else 0,
        )
        self.on_credential = on_credential
        self.withdrawals = withdrawals or (lambda: [])
        self.clock = clock
        self.stats = NodeStats()
        self.heartbeat_s = heartbeat_interval_s
        self.backoff = (reconnect_min_s, reconnect_max_s)
        self.on_change = on_change or (lambda: None)
        self.pool = ThreadPoolExecutor(max_workers=max_jobs, thread_name_prefix="lingua-job")
        self.shutdown = asyncio.Event()
        self.refresh = refresh  # blocking: reloads models when the store changed; True if so
        self.pairing_received = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.streams = (
            StreamRunner(open_stream, self.pool, max_jobs, self._stream_report, clock=clock)
            if open_stream is not None
            else None
        )
        psutil.cpu_percent(None)  # prime: the first call has no interval to measure over

    @property
    def book(self) -> JobBook:
        return self.session.book

    @property
    def credential(self) -> str | None:
        return self.session.credential

    # --- connection loop ---------------------------------------------------------------------

    async def run(self) -> None:
        delay = self.backoff[0]
        dispatcher = asyncio.create_task(self.streams.run()) if self.streams else None
        try:
            while not self.shutdown.is_set():
                try:
                    await self._connection()
                    delay = self.backoff[0]
                except RegisterRefused as exc:
                    if exc.fatal:
                        raise FatalNodeError(str(exc)) from exc
                    self._lost(f"register refused: {exc}")
                except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
                    self._lost(f"{type(exc).__name__}: {exc}")
                except InvalidURI as exc:
                    raise FatalNodeError(f"bad scheduler URL: {exc}") from exc
                finally:
                    self._disconnected()
                    self.urls.failed()  # that instance failed or dropped us: try the next
                if self.shutdown.is_set():
                    break
                wait = random.uniform(delay / 2, delay)  # full jitter keeps a fleet from stampeding
                self.stats.status = f"reconnecting in {wait:.1f}s"
                self.on_change()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.shutdown.wait(), wait)
                delay = min(delay * 2, self.backoff[1])
        finally:
            if dispatcher is not None and self.streams is not None:
                dispatcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await dispatcher
                await self.streams.close()
            self.pool.shutdown(wait=False, cancel_futures=True)

    def _lost(self, why: str) -> None:
        self.stats.last_error = why
        log.warning("scheduler connection lost: %s", why)

    def _disconnected(self) -> None:
        self._ws = None
        self.stats.connected = False
        self.session.disconnected()
        if self.streams is not None:
            self.streams.end_all()
        self.on_change()

    async def _connection(self) -> None:
        async with connect(
            self.urls.current, max_size=None, compression=None, open_timeout=10
        ) as ws:
            self._ws = ws
            await self._carry_out(ws, self.session.connected(self.register()))
            reply = parse_scheduler_message(await asyncio.wait_for(ws.recv(), 10))
            actions = self.session.registered(reply)
            if self.session.heartbeat_interval_s:
                self.heartbeat_s = min(self.heartbeat_s, self.session.heartbeat_interval_s)
            self.stats.connected = True
            self.stats.connects += 1
            self.stats.status = self.session.status
            self.stats.status_reason = self.session.status_reason
            self.stats.last_error = None
            self.on_change()
            log.info("registered as %s: %s", self.node_id, self.stats.status)
            await self._carry_out(ws, actions)
            beats = asyncio.create_task(self._heartbeats(ws))
            try:
                async for data in ws:
                    await self._on_message(ws, data)
            finally:
                beats.cancel()

    # --- messages ----------------------------------------------------------------------------

    async def _on_message(self, ws: ClientConnection, data: str | bytes) -> None:
        try:
            # Audio is decoded strictly by the pipeline, which answers bad base64 with
            # AUDIO_DECODE_FAILED for that job; a parse error here would leave the job unanswered.
            message = parse_scheduler_message(data, verify_audio=False)
        except ProtocolError as exc:
            log.warning("unparseable message from scheduler: %s", exc)
            return
        if isinstance(message, JobAssign):
            log.debug("job=%s attempt=%s assigned", message.job_id, message.attempt_id)
        await self._carry_out(ws, self.session.received(message))
        if isinstance(message, PairingCode):
            self.stats.pairing_code = message.code
            self.pairing_received.set()
        self.stats.last_error = self.session.last_error or self.stats.last_error
        self.on_change()

    async def _carry_out(self, ws: ClientConnection | None, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Beat):
                action = Send(self._beat_message())
            if isinstance(action, Send):
                if ws is None:
                    continue
                message = action.message
                await ws.send(message.to_frame() if action.binary else message.to_json())
                if isinstance(message, NodeHeartbeat):
                    self.stats.heartbeats.append(time.monotonic())
                    del self.stats.heartbeats[:-50]
            elif isinstance(action, StartJob):
                task = asyncio.create_task(self._execute(action.job, self._gate(action.job)))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            elif isinstance(action, (StartStream, FeedStream, EndStream)):
                self._stream_action(action)
            elif isinstance(action, Reload):
                if self.refresh is not None:
                    await asyncio.to_thread(self.refresh)
                self.session.capabilities_changed = True
            elif isinstance(action, KeepCredential):
                if self.on_credential is not None:  # a file write: off the event loop
                    await asyncio.to_thread(self.on_credential, action.credential)
            elif isinstance(action, Close):
                self.shutdown.set()
                if ws is not None:
                    await ws.close()
                if action.fatal:
                    raise FatalNodeError(action.reason)

    def _stream_action(self, action: StartStream | FeedStream | EndStream) -> None:
        if self.streams is None:
            return  # the session refuses streams when the node has none
        if isinstance(action, StartStream):
            self.streams.start(action.job)
        elif isinstance(action, FeedStream):
            self.streams.feed(action.key, action.chunk)
        else:
            self.streams.end(action.key)

    async def _stream_report(self, key: Key, out: AsrPartial | JobResult | StreamFailed) -> None:
        """A stream's partial, result or failure, from the runner: the session decides."""
        if isinstance(out, AsrPartial):
            actions = self.session.stream_partial(key, out)
        elif isinstance(out, StreamFailed):
            actions = self.session.stream_failed(key, out.code.value, str(out))
        else:
            actions = self.session.stream_finished(key, out)
        self.on_change()
        with contextlib.suppress(ConnectionClosed):
            await self._carry_out(self._ws, actions)

    def _gate(self, job: JobAssign) -> StageGate:
        """The job's gate: its deadline counts from now, when the node received it (the
        scheduler's own timeout, from assignment, is a little earlier)."""
        deadline = None
        if job.timeout_ms:
            deadline = self.clock() + job.timeout_ms / 1000
        return StageGate(deadline, lambda: not self.session.may_start(job), self.clock)

    async def _execute(self, job: JobAssign, gate: StageGate) -> None:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        result = await loop.run_in_executor(self.pool, self._guarded, job, gate)
        self.stats.latencies_ms.append((time.perf_counter() - started) * 1000)
        actions = self.session.job_finished(job, result)
        withdrawals = self.withdrawals()
        self.stats.withdrawn += [f"{w.kind} {w.model_id}" for w in withdrawals]
        actions += self.session.backend_withdrawn(withdrawals)
        self.on_change()
        with contextlib.suppress(ConnectionClosed):
            await self._carry_out(self._ws, actions)

    def _guarded(self, job: JobAssign, gate: StageGate) -> JobResult:
        if not self.session.may_start(job):  # cancelled while it waited for a worker
            return self.session.refusal(job, "NODE_UNAVAILABLE")
        if gate.stop_reason() == "timeout":  # waited for a worker past its timeout
            return self.session.refusal(job, "JOB_TIMEOUT")
        return self.run_job(job, gate)

    async def drain_and_stop(self) -> None:
        """Local Ctrl-C: stop taking jobs, finish the running ones, then leave."""
        actions = self.session.local_stop()
        with contextlib.suppress(ConnectionClosed):
            await self._carry_out(self._ws, actions)
        if self._ws is None and self.session.book.idle:
            self.shutdown.set()

    # --- heartbeats --------------------------------------------------------------------------

    async def _heartbeats(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(self.heartbeat_s)
                if self.refresh is not None and await asyncio.to_thread(self.refresh):
                    self.session.capabilities_changed = True  # a model was installed or removed
                await self._carry_out(ws, [Send(self._beat_message())])

    def usage(self) -> ResourceUsage:
        from ._gpu import gpu_usage

        gpu = gpu_usage()
        return ResourceUsage(
            cpu_percent=psutil.cpu_percent(None),
            mem_percent=psutil.virtual_memory().percent,
            gpu_percent=gpu[0] if gpu else None,
            gpu_mem_percent=gpu[1] if gpu else None,
            running_jobs=len(self.session.book.running) + len(self.session.streams.streams),
        )

    def _beat_message(self) -> NodeHeartbeat:
        register = self.register() if self.session.capabilities_changed else None
        return self.session.heartbeat(int(time.time() * 1000), self.usage(), register)
