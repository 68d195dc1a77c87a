"""The socket shell over `ClientSession`: connect with backoff, send what the session says,
feed it what the scheduler answers, hand its deliveries to the user interface.

Every decision (numbering, resume or new session, the flow-control window, RATE_LIMITED
retries, backoff) is in `session.py` and tested there without sockets; this module owns the
one task that talks to the scheduler and is cancelled and awaited by `close()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from lingua_protocol import (
    PROTOCOL_VERSION,
    AudioFormat,
    Error,
    Message,
    PipelineConfig,
    ProtocolError,
    SessionClose,
    SessionInit,
    SessionInitAck,
    UrlRotation,
    parse_server_message,
    split_urls,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from . import __version__
from ._session import Backoff, ClientSession

log = logging.getLogger("lingua.client")

Handler = Callable[[Message], Awaitable[None] | None]
OPEN_TIMEOUT_S = 10.0
"""Budget for one connection attempt: TCP, WebSocket handshake and the `session_init_ack`."""
LATENCIES_KEPT = 1024
"""Latencies of the last answers kept for the user interface to look up by local index."""


class SessionRefused(Exception):
    """The scheduler answered `session_init` with an error (bad pairing code, ...)."""

    def __init__(self, error: Error) -> None:
        super().__init__(f"{error.code}: {error.message}")
        self.error = error


class SchedulerUnreachable(Exception):
    """The first connection attempts failed (nothing listening, a wrong URL path, ...)."""


@dataclass(frozen=True)
class LinkStatus:
    """What the status bar says about the connection."""

    state: Literal["connecting", "connected", "reconnecting", "failed", "closed"]
    detail: str = ""


@dataclass
class SessionStats:
    connects: int = 0
    latency_ms: OrderedDict[int, float] = field(default_factory=OrderedDict)
    """End of speech to final answer, by local index; the last `LATENCIES_KEPT` answers."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, InvalidStatus):
        return f"the server answered HTTP {exc.response.status_code} (is the path /ws/session?)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the scheduler running?)"
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text


class SessionConnection:
    """One scheduler session that survives dropped connections and scheduler restarts.

    `url`: one session endpoint, or several comma-separated (instances of one cluster): a
    failed attempt or a dropped connection moves on to the next (`scheduler_urls`).

    `start_attempts`: how many failed attempts `start()` tolerates before it raises
    `SchedulerUnreachable` (None: keep trying, the live app's choice). `max_reconnects`: how
    many consecutive failed attempts after the session was open end it (None: never).
    """

    def __init__(
        self,
        url: str,
        init: SessionInit,
        on_message: Handler,
        *,
        reconnect_min_s: float = 0.3,
        reconnect_max_s: float = 10.0,
        max_reconnects: int | None = None,
        start_attempts: int | None = 1,
        on_status: Callable[[LinkStatus], None] | None = None,
    ) -> None:
        self.urls = UrlRotation(split_urls(url))
        self.core = ClientSession(
            init.model_copy(
                update={
                    "protocol_version": PROTOCOL_VERSION,
                    "client_version": f"lingua-client/{__version__}",
                    "binary_audio": True if init.binary_audio is None else init.binary_audio,
                }
            ),
            backoff=Backoff(reconnect_min_s, reconnect_max_s),
        )
        self.on_message = on_message
        self.on_status = on_status
        self.max_reconnects = max_reconnects
        self.start_attempts = start_attempts
        self.stats = SessionStats()
        self.status = LinkStatus("connecting")
        self.connected = asyncio.Event()
        self.closed = False
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._first: asyncio.Future[SessionInitAck] | None = None
        self._send_lock = asyncio.Lock()
        self._latency = self.stats.latency_ms
        self._partial_t_ms: float | None = None

    # --- what the user interface reads -----------------------------------------------------

    @property
    def session_id(self) -> str | None:
        return self.core.session_id

    @property
    def assigned_node(self) -> str | None:
        return self.core.assigned_node

    @property
    def unanswered(self) -> int:
        return self.core.unanswered

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> SessionInitAck:
        """Connect and open the session; the connection then lives in a task of its own.
        Raises `SessionRefused` or `SchedulerUnreachable` when the session cannot start."""
        self._first = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(), name="lingua-session")
        return await asyncio.shield(self._first)

    def launch(self) -> None:
        """Start connecting in the background (the live app: the mic starts at once)."""
        self._first = asyncio.get_running_loop().create_future()
        self._first.add_done_callback(lambda f: f.exception() if not f.cancelled() else None)
        self._task = asyncio.create_task(self._run(), name="lingua-session")

    async def close(self) -> None:
        self.closed = True
        ws = self._ws
        if ws is not None and self.session_id:
            with contextlib.suppress(ConnectionClosed, OSError):
                await ws.send(
                    SessionClose(session_id=self.session_id, reason="client quit").to_json()
                )
            with contextlib.suppress(ConnectionClosed, OSError):
                await ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._set_status(LinkStatus("closed"))

    # --- sending ---------------------------------------------------------------------------

    async def send_audio(
        self,
        audio: bytes,
        *,
        audio_format: AudioFormat = "pcm16",
        sample_rate: int = 16000,
        manual_cut: bool = False,
        spoken_until: float | None = None,
        pipeline: PipelineConfig | None = None,
    ) -> int:
        """Hand one utterance to the session; returns its local index. It goes out as soon as
        the connection and the flow-control window allow. `spoken_until` (perf_counter) is
        when the speech ended, so latency is measured from there."""
        index = self.core.submit(
            audio,
            now=time.perf_counter(),
            audio_format=audio_format,
            sample_rate=sample_rate,
            manual_cut=manual_cut,
            pipeline=pipeline,
            spoken_at=spoken_until,
        )
        await self._deliver_all()
        self._wake.set()
        return index

    async def open_stream(
        self, *, sample_rate: int = 16000, pipeline: PipelineConfig | None = None
    ) -> int:
        """Start an utterance sent while the speaker talks; returns its local index. Its
        audio follows with `append_stream` and its end with `close_stream`; where the session
        has no streaming grant it goes whole at its end (see `ClientSession`)."""
        index = self.core.open_stream(
            now=time.perf_counter(), sample_rate=sample_rate, pipeline=pipeline
        )
        await self._deliver_all()
        return index

    def append_stream(self, index: int, pcm16: bytes) -> bool:
        """More audio of an open stream; False: not taken (the stream has ended or is at its
        longest), so the caller closes it and opens the next one for this audio."""
        taken = self.core.append_stream(index, pcm16, time.perf_counter())
        if taken:
            self._wake.set()
        return taken

    async def close_stream(
        self, index: int, *, manual_cut: bool = False, spoken_until: float | None = None
    ) -> None:
        """The speaker finished this utterance (`spoken_until`, perf_counter: when, for its
        latency). Its final chunk goes at once."""
        self.core.close_stream(
            index, time.perf_counter(), manual_cut=manual_cut, spoken_at=spoken_until
        )
        await self._deliver_all()
        self._wake.set()

    async def send(self, message: Message) -> None:
        """Any other client message (rooms, heartbeats)."""
        if self._ws is None:
            raise ConnectionError("not connected to the scheduler")
        await self._ws.send(message.to_json())

    async def drained(self, timeout_s: float | None = None) -> None:
        """Wait until every utterance handed over so far has its final answer."""
        async with asyncio.timeout(timeout_s):
            while self.core.unanswered and not self.closed and self.core.failed is None:
                self._progress.clear()
                await self._progress.wait()

    # --- the connection task ---------------------------------------------------------------

    async def _run(self) -> None:
        attempts = 0
        while not self.closed:
            try:
                ws, reply = await self._connect()
            except (OSError, InvalidHandshake, InvalidURI, TimeoutError, ConnectionClosed) as exc:
                attempts += 1
                self.core.connect_failed(time.perf_counter())
                if self._give_up(attempts, exc):
                    return
                delay = self.core.reconnect_delay_s()
                self._set_status(
                    LinkStatus(
                        "reconnecting" if self.stats.connects else "connecting",
                        f"{_describe(exc)}; retrying in {delay:.1f} s",
                    )
                )
                log.warning("cannot reach the scheduler at %s: %s", self.url, _describe(exc))
                self.urls.failed()
                await asyncio.sleep(delay)
                continue
            if isinstance(reply, Error):
                await ws.close()
                if self.core.refused(reply, time.perf_counter()):
                    log.warning("session could not be resumed (%s); opening a new one", reply.code)
                    self._set_status(LinkStatus("reconnecting", "opening a new session"))
                    continue
                log.error("the scheduler refused the session: %s %s", reply.code, reply.message)
                await self._deliver_all()
                self._fail(SessionRefused(reply), f"refused: {reply.code}: {reply.message}")
                return
            attempts = 0
            await self._serve(ws, reply)
            self.urls.failed()  # the connection dropped: its instance may be gone, try the next

    @property
    def url(self) -> str:
        """The scheduler URL dialled now (of the comma-separated `url` given)."""
        return self.urls.current

    def _give_up(self, attempts: int, exc: BaseException) -> bool:
        opened = self.stats.connects > 0
        limit = self.max_reconnects if opened else self.start_attempts
        if limit is None or attempts < limit + (1 if opened else 0):
            return False
        self._fail(
            SchedulerUnreachable(f"cannot reach the scheduler at {self.url}: {_describe(exc)}")
        )
        return True

    def _fail(self, exc: Exception, detail: str = "") -> None:
        self.closed = True
        self._set_status(LinkStatus("failed", detail or str(exc)))
        if self._first is not None and not self._first.done():
            self._first.set_exception(exc)
        self._progress.set()

    async def _connect(self) -> tuple[ClientConnection, SessionInitAck | Error]:
        async with asyncio.timeout(OPEN_TIMEOUT_S):
            ws = await connect(self.url, max_size=None, compression=None, open_timeout=None)
            try:
                await ws.send(self.core.opening_message().to_json())
                reply = parse_server_message(await ws.recv())
            except ProtocolError as exc:
                await ws.close()
                raise ConnectionError(f"unreadable answer to session_init: {exc}") from exc
            except BaseException:
                await ws.close()
                raise
        if not isinstance(reply, SessionInitAck | Error):
            await ws.close()
            raise ConnectionError(f"expected session_init_ack, got {reply.type}")
        return ws, reply

    async def _serve(self, ws: ClientConnection, ack: SessionInitAck) -> None:
        self.core.opened(ack, time.perf_counter())
        self._ws = ws
        self.stats.connects += 1
        self.connected.set()
        self._set_status(LinkStatus("connected"))
        if self._first is not None and not self._first.done():
            self._first.set_result(ack)
        writer = asyncio.create_task(self._write(ws), name="lingua-session-writer")
        try:
            async for data in ws:
                self._receive(data)
                await self._deliver_all()
                self._wake.set()
        except ConnectionClosed:
            pass
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await writer
            self._ws = None
            self.connected.clear()
            self.core.connection_lost(time.perf_counter())
        if not self.closed:
            self._set_status(LinkStatus("reconnecting", "connection lost"))
            log.warning("connection to the scheduler lost; reconnecting")
            await asyncio.sleep(self.core.reconnect_delay_s())

    def _receive(self, data: str | bytes) -> None:
        try:
            message = parse_server_message(data)
        except ProtocolError as exc:
            log.warning("unparseable message from the scheduler: %s", exc)
            return
        self.core.received(message, time.perf_counter())

    async def _write(self, ws: ClientConnection) -> None:
        while True:
            for message in self.core.utterances_to_send(time.perf_counter()):
                async with self._send_lock:
                    if self.core.binary_audio:
                        await ws.send(message.to_frame())
                    else:
                        await ws.send(message.to_json_bytes(), text=True)
            self._wake.clear()
            deadline = self.core.next_deadline(time.perf_counter())
            timeout = None if deadline is None else max(0.0, deadline - time.perf_counter())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def _deliver_all(self) -> None:
        delivered = self.core.deliveries()
        for d in delivered:
            self._partial_t_ms = d.t_ms
            if d.latency_ms is not None:
                index = getattr(d.message, "utterance_index", None)
                if isinstance(index, int):
                    self._latency[index] = d.latency_ms
                    while len(self._latency) > LATENCIES_KEPT:
                        self._latency.popitem(last=False)
            out = self.on_message(d.message)
            if out is not None:
                await out
        if delivered:
            self._progress.set()

    def partial_t_ms(self) -> float | None:
        """For the `asr_partial` being handed over now: milliseconds since its utterance's
        first audio was sent (see `Delivery.t_ms`)."""
        return self._partial_t_ms

    def latency_ms(self, index: int) -> float | None:
        """Latency of a delivered final answer (see `Delivery.latency_ms`)."""
        return self._latency.get(index)

    def _set_status(self, status: LinkStatus) -> None:
        self.status = status
        if self.on_status is not None:
            self.on_status(status)
