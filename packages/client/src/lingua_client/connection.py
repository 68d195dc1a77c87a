"""A client session with the scheduler that survives a dropped connection.

Every utterance is kept until its final answer (a `translation_result`, a `missing_result` or
an `error` for its index) arrives. When the connection drops, the session is re-opened with
its `resume_token` and the last index received; whatever is still unanswered is sent again
(the scheduler ignores resends of work in progress and replays answers it already has), and
answers that arrive twice are passed on once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from lingua_protocol import (
    PROTOCOL_VERSION,
    AudioData,
    Error,
    Message,
    MissingResult,
    ProtocolError,
    SessionClose,
    SessionInit,
    SessionInitAck,
    TranslationResult,
    Utterance,
    parse_server_message,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from . import __version__

log = logging.getLogger("lingua.client")

FINAL = (TranslationResult, MissingResult)
Handler = Callable[[Message], Awaitable[None] | None]


class SessionRefused(Exception):
    """The scheduler answered `session_init` with an error (bad pairing code, ...)."""

    def __init__(self, error: Error) -> None:
        super().__init__(f"{error.code}: {error.message}")
        self.error = error


def is_final(message: Message) -> int | None:
    """The utterance index this message finally answers, if it does."""
    if isinstance(message, TranslationResult) and message.speaker_session_id not in (
        None,
        message.session_id,
    ):
        return None  # another room member's words: not an answer to one of ours
    if isinstance(message, FINAL):
        return message.utterance_index
    if isinstance(message, Error) and message.utterance_index is not None:
        return message.utterance_index  # a room member's failure comes as `room_error`
    return None


@dataclass
class SessionStats:
    connects: int = 0
    sent_at: dict[int, float] = field(default_factory=dict)
    latency_ms: dict[int, float] = field(default_factory=dict)


class SessionConnection:
    def __init__(
        self,
        url: str,
        init: SessionInit,
        on_message: Handler,
        *,
        reconnect_min_s: float = 0.3,
        reconnect_max_s: float = 10.0,
        max_reconnects: int | None = None,
    ) -> None:
        self.url = url
        self.init = init.model_copy(
            update={
                "protocol_version": PROTOCOL_VERSION,
                "client_version": f"lingua-client/{__version__}",
                "binary_audio": True if init.binary_audio is None else init.binary_audio,
            }
        )
        self.on_message = on_message
        self.backoff = (reconnect_min_s, reconnect_max_s)
        self.max_reconnects = max_reconnects
        self.session_id: str | None = None
        self.resume_token: str | None = None
        self.binary = False
        self.assigned_node: str | None = None
        self.next_index = 0
        self.unanswered: dict[int, Utterance] = {}
        self.answered: set[int] = set()
        self.stats = SessionStats()
        self.connected = asyncio.Event()
        self.closed = False
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._send_lock = asyncio.Lock()
        self._progress = asyncio.Event()

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> SessionInitAck:
        ack = await self._open()
        self._reader = asyncio.create_task(self._run())
        return ack

    async def _open(self) -> SessionInitAck:
        ws = await connect(self.url, max_size=None, compression=None, open_timeout=10)
        init = self.init
        if self.resume_token:
            contiguous = self._contiguous_answered()
            init = init.model_copy(
                update={"resume_token": self.resume_token}
                | ({"last_received_index": contiguous} if contiguous is not None else {})
            )
        await ws.send(init.to_json())
        reply = parse_server_message(await asyncio.wait_for(ws.recv(), 10))
        if isinstance(reply, Error):
            await ws.close()
            raise SessionRefused(reply)
        if not isinstance(reply, SessionInitAck):
            await ws.close()
            raise ConnectionError(f"expected session_init_ack, got {reply.type}")
        self._ws = ws
        self.session_id = reply.session_id
        self.resume_token = reply.resume_token or self.resume_token
        self.binary = bool(reply.binary_audio)
        self.assigned_node = reply.assigned_node_id
        self.stats.connects += 1
        self.connected.set()
        for utterance in list(self.unanswered.values()):  # re-send what is still open
            await self._send(utterance.model_copy(update={"session_id": reply.session_id}))
        return reply

    def _contiguous_answered(self) -> int | None:
        last = None
        i = 0
        while i in self.answered:
            last = i
            i += 1
        return last

    async def _run(self) -> None:
        delay = self.backoff[0]
        failures = 0
        while not self.closed:
            ws = self._ws
            if ws is not None:
                try:
                    async for data in ws:
                        await self._dispatch(data)
                except ConnectionClosed:
                    pass
            if self.closed:
                return
            self.connected.clear()
            self._ws = None
            while not self.closed:
                await asyncio.sleep(random.uniform(delay / 2, delay))
                try:
                    await self._open()
                    delay = self.backoff[0]
                    failures = 0
                    break
                except SessionRefused as exc:
                    log.error("session could not be resumed: %s", exc)
                    await self._deliver(exc.error)
                    self.closed = True
                    self._progress.set()
                    return
                except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
                    failures += 1
                    log.warning("reconnect failed (%s); retrying", exc)
                    delay = min(delay * 2, self.backoff[1])
                    if self.max_reconnects is not None and failures > self.max_reconnects:
                        self.closed = True
                        self._progress.set()
                        return

    async def _dispatch(self, data: str | bytes) -> None:
        try:
            message = parse_server_message(data)
        except ProtocolError as exc:
            log.warning("unparseable message from the scheduler: %s", exc)
            return
        index = is_final(message)
        if index is not None:
            if index in self.answered:
                return  # a replay of something already shown
            self.answered.add(index)
            self.unanswered.pop(index, None)
            self._progress.set()
            sent = self.stats.sent_at.pop(index, None)
            if sent is not None:
                self.stats.latency_ms[index] = (time.perf_counter() - sent) * 1000
        if isinstance(message, TranslationResult) and message.node_id:
            self.assigned_node = message.node_id
        await self._deliver(message)

    async def _deliver(self, message: Message) -> None:
        out = self.on_message(message)
        if out is not None:
            await out

    async def close(self) -> None:
        self.closed = True
        ws = self._ws
        if ws is not None and self.session_id:
            with contextlib.suppress(Exception):
                await ws.send(
                    SessionClose(session_id=self.session_id, reason="client quit").to_json()
                )
            with contextlib.suppress(Exception):
                await ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader

    # --- sending -----------------------------------------------------------------------------

    async def send_audio(
        self,
        audio: bytes,
        *,
        audio_format: str = "pcm16",
        sample_rate: int = 16000,
        manual_cut: bool = False,
        spoken_until: float | None = None,
    ) -> int:
        """Send one utterance; returns its index. `spoken_until` (perf_counter) is when the
        speech ended, so latency is measured from there rather than from the send."""
        index = self.next_index
        self.next_index += 1
        utterance = Utterance(
            session_id=self.session_id or "",
            utterance_index=index,
            manual_cut=manual_cut,
            audio=AudioData.from_bytes(audio),
            audio_format=audio_format,  # type: ignore[arg-type]
            sample_rate=sample_rate,
        )
        self.unanswered[index] = utterance
        self.stats.sent_at[index] = spoken_until or time.perf_counter()
        if self._ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await self._send(utterance)
        return index

    async def send(self, message: Message) -> None:
        """Any other client message (rooms, heartbeats)."""
        if self._ws is None:
            raise ConnectionError("not connected to the scheduler")
        await self._ws.send(message.to_json())

    async def _send(self, message: Message) -> None:
        ws = self._ws
        if ws is None:
            return
        async with self._send_lock:
            if self.binary and message.audio_data() is not None:
                await ws.send(message.to_frame())
            else:
                await ws.send(message.to_json_bytes(), text=True)

    async def drained(self, timeout_s: float | None = None) -> None:
        """Wait until every utterance sent so far has its final answer."""
        async with asyncio.timeout(timeout_s):
            while self.unanswered and not self.closed:
                self._progress.clear()
                await self._progress.wait()
