"""The node's connection to the scheduler: register, heartbeat, take jobs, answer them.

Inference runs in a thread pool bounded by `max_jobs`, so the event loop stays free to
heartbeat and ack while a long ASR runs. The connection is re-made with exponential backoff
and jitter whenever it drops; jobs that were running then are discarded, since the scheduler
has already handed them to other nodes.
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
    Error,
    ErrorCode,
    JobAck,
    JobAssign,
    JobCancel,
    JobError,
    JobResult,
    NodeControl,
    NodeHeartbeat,
    NodeRegister,
    NodeRegisterAck,
    PairingCode,
    PairingCodeRequest,
    ProtocolError,
    ResourceUsage,
    parse_scheduler_message,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from .jobs import JobBook

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


class FatalNodeError(Exception):
    """The scheduler refused this node for a reason retrying cannot fix (e.g. a bad token)."""


class NodeAgent:
    def __init__(
        self,
        register: Callable[[], NodeRegister],
        run_job: Callable[[JobAssign], JobResult],
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
    ) -> None:
        """`credential`: the node's secret (see `identity.credential`), presented in every
        register; a credential the scheduler hands back (to a node that had none) replaces
        it and goes to `on_credential` to be kept."""
        self.register = register
        self.credential = credential
        self.on_credential = on_credential
        self.run_job = run_job
        self.url = url
        self.node_id = node_id
        self.book = JobBook(max_jobs)
        self.stats = NodeStats()
        self.heartbeat_s = heartbeat_interval_s
        self.backoff = (reconnect_min_s, reconnect_max_s)
        self.binary_audio = binary_audio
        self.request_pairing = request_pairing
        self.on_change = on_change or (lambda: None)
        self.pool = ThreadPoolExecutor(max_workers=max_jobs, thread_name_prefix="lingua-job")
        self.shutdown = asyncio.Event()
        self.capabilities_changed = False
        self.refresh = refresh  # blocking: reloads models when the store changed; True if so
        self.pairing_received = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._binary = False
        self._tasks: set[asyncio.Task[None]] = set()
        psutil.cpu_percent(None)  # prime: the first call has no interval to measure over

    # --- connection loop ---------------------------------------------------------------------

    async def run(self) -> None:
        delay = self.backoff[0]
        try:
            while not self.shutdown.is_set():
                try:
                    await self._connection()
                    delay = self.backoff[0]
                except FatalNodeError:
                    raise
                except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
                    self.stats.last_error = f"{type(exc).__name__}: {exc}"
                    log.warning("scheduler connection lost: %s", self.stats.last_error)
                except InvalidURI as exc:
                    raise FatalNodeError(f"bad scheduler URL: {exc}") from exc
                finally:
                    self._disconnected()
                if self.shutdown.is_set():
                    break
                wait = random.uniform(delay / 2, delay)  # full jitter keeps a fleet from stampeding
                self.stats.status = f"reconnecting in {wait:.1f}s"
                self.on_change()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.shutdown.wait(), wait)
                delay = min(delay * 2, self.backoff[1])
        finally:
            self.pool.shutdown(wait=False, cancel_futures=True)

    def _register_message(self) -> NodeRegister:
        message = self.register()
        if self.credential is None or message.node_credential is not None:
            return message
        return message.model_copy(update={"node_credential": self.credential})

    def _disconnected(self) -> None:
        self._ws = None
        self.stats.connected = False
        self.book.drop_all()
        self.on_change()

    async def _connection(self) -> None:
        async with connect(self.url, max_size=None, compression=None, open_timeout=10) as ws:
            self._ws = ws
            await ws.send(self._register_message().to_json())
            reply = parse_scheduler_message(await asyncio.wait_for(ws.recv(), 10))
            if isinstance(reply, Error):
                if reply.code in (ErrorCode.UNAUTHORIZED, ErrorCode.NODE_ID_CONFLICT):
                    raise FatalNodeError(f"{reply.code}: {reply.message}")
                raise ConnectionError(f"register refused: {reply.code} {reply.message}")
            if not isinstance(reply, NodeRegisterAck):
                raise ConnectionError(f"expected node_register_ack, got {reply.type}")
            if reply.node_credential and reply.node_credential != self.credential:
                self.credential = reply.node_credential
                if self.on_credential is not None:  # a file write: off the event loop
                    await asyncio.to_thread(self.on_credential, reply.node_credential)
            self._binary = bool(reply.binary_audio and self.binary_audio)
            if reply.heartbeat_interval_s:
                self.heartbeat_s = min(self.heartbeat_s, reply.heartbeat_interval_s)
            self.stats.connected = True
            self.stats.connects += 1
            self.stats.status = reply.status or "ready"
            self.stats.status_reason = reply.status_reason
            self.stats.last_error = None
            self.on_change()
            log.info("registered as %s: %s", self.node_id, self.stats.status)
            if self.request_pairing:
                await ws.send(PairingCodeRequest(node_id=self.node_id).to_json())
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
            await self._on_job(ws, message)
        elif isinstance(message, JobCancel):
            hits = self.book.cancel(message.job_id, message.attempt_id)
            log.info("job=%s cancelled (%s) running=%d", message.job_id, message.reason, hits)
        elif isinstance(message, NodeControl):
            await self._on_control(ws, message)
        elif isinstance(message, PairingCode):
            self.stats.pairing_code = message.code
            self.pairing_received.set()
            self.on_change()
        elif isinstance(message, Error):
            self.stats.last_error = f"{message.code}: {message.message}"
            log.warning("scheduler error: %s", self.stats.last_error)
            self.on_change()
            if message.code == ErrorCode.NODE_ID_CONFLICT:
                # Another process with this node's credential took over (the same home run
                # twice): reconnecting would take it back, and the two would alternate.
                raise FatalNodeError(f"{message.code}: {message.message}")

    async def _on_job(self, ws: ClientConnection, job: JobAssign) -> None:
        key = (job.job_id, job.attempt_id)
        refused = self.book.admit(key)
        if refused is not None:
            await self._send(ws, self._refusal(job, refused))
            return
        ack = JobAck(
            job_id=job.job_id,
            attempt_id=job.attempt_id,
            node_id=self.node_id,
            session_id=job.session_id,
            utterance_index=job.utterance_index,
        )
        await ws.send(ack.to_json())
        self.on_change()
        task = asyncio.create_task(self._execute(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _execute(self, job: JobAssign) -> None:
        key = (job.job_id, job.attempt_id)
        if not self.book.should_start(key):
            self.book.finish(key, False)
            return
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        result = await loop.run_in_executor(self.pool, self._guarded, job, key)
        self.stats.latencies_ms.append((time.perf_counter() - started) * 1000)
        send = self.book.finish(key, result.success)
        self.on_change()
        ws = self._ws
        if send and ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await self._send(ws, result)
        if self.shutdown_requested and self.book.idle:
            self.shutdown.set()
            if ws is not None:
                await ws.close()

    def _guarded(self, job: JobAssign, key: tuple[str, str | None]) -> JobResult:
        if not self.book.should_start(key):  # cancelled while it waited for a worker
            return self._refusal(job, ErrorCode.NODE_UNAVAILABLE)
        return self.run_job(job)

    def _refusal(self, job: JobAssign, code: str) -> JobResult:
        code = str(code)
        return JobResult(
            job_id=job.job_id,
            attempt_id=job.attempt_id,
            node_id=self.node_id,
            session_id=job.session_id,
            utterance_index=job.utterance_index,
            success=False,
            error=JobError(code=code, message=f"node {self.node_id} did not run the job: {code}"),
        )

    async def _send(self, ws: ClientConnection, message: JobResult) -> None:
        audio = message.audio_data()
        if self._binary and audio is not None:
            await ws.send(message.to_frame())
        else:
            await ws.send(message.to_json())

    shutdown_requested = False

    async def _on_control(self, ws: ClientConnection, control: NodeControl) -> None:
        log.info("node_control %s (%s)", control.command, control.reason)
        if control.command == "drain":
            self.book.draining = True
        elif control.command == "resume":
            self.book.draining = False
        elif control.command == "shutdown":
            self.book.draining = True
            self.shutdown_requested = True
            if self.book.idle:
                self.shutdown.set()
                await ws.close()
        elif control.command == "reload_config" and self.refresh is not None:
            self.capabilities_changed = await asyncio.to_thread(self.refresh) or True
        self.on_change()
        await self._beat(ws)

    async def drain_and_stop(self) -> None:
        """Local Ctrl-C: stop taking jobs, finish the running ones, then leave."""
        self.book.draining = True
        self.shutdown_requested = True
        if self._ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await self._beat(self._ws)
        if self.book.idle:
            self.shutdown.set()
            if self._ws is not None:
                await self._ws.close()

    # --- heartbeats --------------------------------------------------------------------------

    async def _heartbeats(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(self.heartbeat_s)
                if self.refresh is not None and await asyncio.to_thread(self.refresh):
                    self.capabilities_changed = True  # a model was installed or removed
                await self._beat(ws)

    def usage(self) -> ResourceUsage:
        from .gpu import gpu_usage

        gpu = gpu_usage()
        return ResourceUsage(
            cpu_percent=psutil.cpu_percent(None),
            mem_percent=psutil.virtual_memory().percent,
            gpu_percent=gpu[0] if gpu else None,
            gpu_mem_percent=gpu[1] if gpu else None,
            running_jobs=len(self.book.running),
        )

    async def _beat(self, ws: ClientConnection) -> None:
        beat = NodeHeartbeat(
            node_id=self.node_id,
            timestamp=int(time.time() * 1000),
            resource_usage=self.usage(),
            draining=self.book.draining,
        )
        if self.capabilities_changed:
            reg = self.register()
            beat = beat.model_copy(
                update={
                    "installed_models": reg.installed_models,
                    "installed_services": reg.installed_services,
                    "capability_by_type": reg.capability_by_type,
                    "language_capabilities": reg.language_capabilities,
                    "features_supported": reg.features_supported,
                }
            )
            self.capabilities_changed = False
        self.stats.heartbeats.append(time.monotonic())
        del self.stats.heartbeats[:-50]
        await ws.send(beat.to_json())
