"""The I/O shell: websockets server for /ws/session and /ws/node, plus /health, /api/v1/cluster
and /metrics over plain HTTP. It parses, calls the core, and carries out the core's actions."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import http
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from lingua_protocol import (
    ErrorCode,
    Message,
    NodeControl,
    NodeRegisterAck,
    ProtocolError,
    SessionInitAck,
    error_message,
    parse_client_message,
    parse_node_message,
    parse_scheduler_message,
)
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from .core.actions import Action, Close, Send
from .core.engine import CLOSE_TOO_BIG, SchedulerCore
from .core.summary import language_summary
from .metrics import Metrics
from .settings import SchedulerSettings

log = logging.getLogger("lingua.scheduler.server")

OUTBOX_LIMIT = 1024
"""Messages a peer's outbox holds at most (besides `peer_outbox_bytes`)."""
WRITE_LIMIT = 2 * 1024 * 1024
"""Socket buffer per peer above which messages wait in its outbox for the peer to read."""


@dataclass(slots=True)
class Peer:
    conn_id: str
    ws: ServerConnection
    kind: str
    binary: bool = False
    outbox: asyncio.Queue[Outgoing] = field(default_factory=lambda: asyncio.Queue(OUTBOX_LIMIT))
    outbox_bytes: int = 0  # bytes of the frames waiting in `outbox`
    writer: asyncio.Task[None] | None = None
    sending: bool = False  # the writer task is inside ws.send(): later messages queue behind
    closing: bool = False  # closed for not reading: nothing more is queued for it


@dataclass(slots=True, frozen=True)
class Frame:
    """Bytes ready for the wire; `text` sends them as a text frame without a str round trip."""

    data: bytes
    text: bool


Outgoing = Frame | tuple[int, str]


def _wire(message: Message, binary: bool) -> Frame:
    """Binary frame only when the peer negotiated it and the audio is already raw: base64
    audio is relayed as base64, raw audio as raw, so the scheduler never re-codes audio for a
    peer that speaks the same transport."""
    audio = message.audio_data()
    if binary and audio is not None and audio.is_raw:
        return Frame(message.to_frame(), text=False)
    return Frame(message.to_json_bytes(), text=True)


def _parse_client_unverified(data: str | bytes) -> Message:
    return parse_client_message(data, verify_audio=False)


def _write_now(ws: ServerConnection, frame: Frame) -> bool:
    """Write a whole message in the caller's turn of the event loop, as `ws.send()` would but
    without a task switch per message: through the connection's sans-I/O protocol, and only
    while the socket buffer is below the limit. False, with nothing written, otherwise; the
    caller then queues the message for the peer's writer task, which waits for the drain."""
    if ws.protocol.state is not State.OPEN or ws.transport.get_write_buffer_size() >= WRITE_LIMIT:
        return False
    if frame.text:
        ws.protocol.send_text(frame.data)
    else:
        ws.protocol.send_binary(frame.data)
    for chunk in ws.protocol.data_to_send():  # a data frame never ends the stream: no EOF here
        ws.transport.write(chunk)
    return True


class SchedulerServer:
    def __init__(
        self, settings: SchedulerSettings, clock: Callable[[], float] | None = None
    ) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.core = SchedulerCore(settings, observer=self.metrics)
        self.metrics.attach(self.core)
        self.peers: dict[str, Peer] = {}
        self._clock = clock
        self._server: Server | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._stopped = False
        self._closers: set[asyncio.Task[None]] = set()

    def now(self) -> float:
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await serve(
            self._handle,
            self.settings.host,
            self.settings.port,
            process_request=self._http,
            compression=None,  # audio frames do not deflate; compressing them costs ms each
            max_size=self.settings.max_message_bytes * 2,
            max_queue=64,
            # a 3 s utterance is a ~128 KB frame: with the default 32 KiB limit every such send
            # waits for the socket to drain, one more event-loop turn per utterance
            write_limit=WRITE_LIMIT,
            ping_interval=20,
            ping_timeout=20,
        )
        self._arm()
        log.info("scheduler listening on ws://%s:%d", self.settings.host, self.port)

    async def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    async def serve_forever(self) -> None:
        await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    # ------------------------------------------------------------------ HTTP

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?")[0]
        if path in ("/ws/session", "/ws/node", "/ws/admin"):
            return None
        if path == "/health":
            return self._json(http.HTTPStatus.OK, {"status": "ok"})
        if path == "/api/v1/languages":
            response = self._json(
                http.HTTPStatus.OK, language_summary(self.core.registry.nodes.values())
            )
            response.headers["Access-Control-Allow-Origin"] = "*"
            return response
        if path == "/api/v1/cluster":
            body = self.core.cluster()
            body["settings"] = self.settings.public_dict()
            return self._json(http.HTTPStatus.OK, body)
        if path == "/metrics":
            headers = Headers([("Content-Type", "text/plain; version=0.0.4; charset=utf-8")])
            return Response(200, "OK", headers, self.metrics.render())
        return self._json(http.HTTPStatus.NOT_FOUND, {"error": "not found", "path": path})

    @staticmethod
    def _json(status: http.HTTPStatus, body: Any) -> Response:
        data = orjson.dumps(body)
        headers = Headers(
            [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        )
        return Response(status.value, status.phrase, headers, data)

    # ------------------------------------------------------------------ WebSocket

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        if ws.request.path.split("?")[0] == "/ws/admin":
            await self._admin(ws)
            return
        kind = "node" if ws.request.path.split("?")[0] == "/ws/node" else "session"
        # A client's audio goes on to a node, which decodes it strictly and answers bad base64
        # with AUDIO_DECODE_FAILED for that utterance: checking it here too would spend the
        # scheduler's one core on what the nodes do anyway. It is still checked to be safe to
        # forward as it is. A node's audio (TTS) goes to clients and is checked here in full.
        parse = parse_node_message if kind == "node" else _parse_client_unverified
        peer = Peer(conn_id=f"{kind}-{uuid.uuid4().hex[:12]}", ws=ws, kind=kind)
        peer.writer = asyncio.create_task(self._write_loop(peer))
        self.peers[peer.conn_id] = peer
        limit = self.settings.max_message_bytes
        try:
            while True:
                # Text frames stay bytes: the parser reads UTF-8 itself, and the audio in them
                # is relayed as the bytes it arrived as (see lingua_protocol.splice).
                data = await ws.recv(decode=False)
                if len(data) > limit:
                    self._send(
                        peer,
                        error_message(
                            ErrorCode.MESSAGE_TOO_LARGE,
                            f"message of {len(data)} bytes exceeds {limit}",
                        ),
                    )
                    self._enqueue(peer, (CLOSE_TOO_BIG, "message too large"))
                    break
                try:
                    message = parse(data)
                except ProtocolError as exc:
                    self._send(peer, error_message(exc.code, exc.message, field=exc.field))
                    continue
                self._run(peer, message)
        except ConnectionClosed:
            pass
        finally:
            self.peers.pop(peer.conn_id, None)
            event = self.core.node_disconnected if kind == "node" else self.core.client_disconnected
            self._apply(event(peer.conn_id, self.now()))
            if peer.writer:
                # Let queued messages (an error before a close) go out, then stop.
                with contextlib.suppress(asyncio.QueueFull):
                    peer.outbox.put_nowait((0, ""))
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(peer.writer, 2.0)

    async def _admin(self, ws: ServerConnection) -> None:
        """Operator commands: one `node_control` (with the target `node_id`) per connection.
        Needs `admin_token` (as `?token=`) when one is set; otherwise only from this machine."""
        assert ws.request is not None
        query = parse_qs(urlsplit(ws.request.path).query)
        given = (query.get("token") or [""])[0]
        expected = self.settings.admin_token
        host = ws.remote_address[0] if ws.remote_address else ""
        allowed = (
            hmac.compare_digest(given.encode(), expected.encode())
            if expected
            else host in ("127.0.0.1", "::1")
        )
        if not allowed:
            await ws.send(error_message(ErrorCode.UNAUTHORIZED, "admin token required").to_json())
            await ws.close(1008, "unauthorized")
            return
        try:
            message = parse_scheduler_message(await ws.recv())
            node_id = (message.model_extra or {}).get("node_id")
            if not isinstance(message, NodeControl) or not isinstance(node_id, str):
                raise ProtocolError(
                    ErrorCode.INVALID_MESSAGE, "expected node_control with node_id", "node_id"
                )
        except ProtocolError as exc:
            await ws.send(error_message(exc.code, exc.message, field=exc.field).to_json())
            await ws.close()
            return
        except ConnectionClosed:
            return
        actions = self.core.control_node(node_id, message.command, self.now())
        if not actions:
            await ws.send(
                error_message(ErrorCode.NODE_UNAVAILABLE, f"no connected node {node_id}").to_json()
            )
        else:
            self._apply(actions)
            log.info("operator: node_control %s -> %s", message.command, node_id)
        await ws.close()

    def _run(self, peer: Peer, message: Message) -> None:
        handler = self.core.node_message if peer.kind == "node" else self.core.client_message
        try:
            actions = handler(peer.conn_id, message, self.now())
        except Exception:  # a bug must not take down other connections: log it, tell the peer
            log.exception("core failed on %s from %s", message.type, peer.conn_id)
            self._send(peer, error_message(ErrorCode.INTERNAL_ERROR, "internal error"))
            return
        self._apply(actions)

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            peer = self.peers.get(action.conn_id)
            if peer is None:
                continue
            if isinstance(action, Send):
                self._send(peer, action.message)
            elif isinstance(action, Close):
                self._enqueue(peer, (action.code, action.reason))
        self._arm()

    def _arm(self) -> None:
        """Wake up at the core's next deadline (one heap peek per event; the timer moves only
        when the deadline comes earlier than the one already set)."""
        due = self.core.next_deadline()
        if (
            self._stopped
            or due is None
            or (self._timer is not None and self._timer_at is not None and self._timer_at <= due)
        ):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = due
        delay = max(0.0, due - self.now()) if due != float("-inf") else 0.0
        self._timer = asyncio.get_running_loop().call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = None
        try:
            actions = self.core.tick(self.now())
        except Exception:  # keep the timer alive: one bad deadline must not stop failover
            log.exception("tick failed")
            actions = []
        self._apply(actions)

    def _send(self, peer: Peer, message: Message) -> None:
        if isinstance(message, SessionInitAck | NodeRegisterAck) and message.binary_audio:
            peer.binary = True
        self._enqueue(peer, _wire(message, peer.binary))

    def _enqueue(self, peer: Peer, item: Outgoing) -> None:
        if peer.closing:
            return
        idle = peer.outbox.empty() and not peer.sending  # nothing ahead of it to overtake
        if isinstance(item, Frame) and idle and _write_now(peer.ws, item):
            return
        size = len(item.data) if isinstance(item, Frame) else 0
        if peer.outbox_bytes + size > self.settings.peer_outbox_bytes or peer.outbox.full():
            # A peer that does not read is closed (1013) rather than buffered without bound;
            # a client's session survives for resume, and what it missed is replayed.
            log.warning(
                "%s is not reading its messages (%d queued, %d bytes); closing it",
                peer.conn_id,
                peer.outbox.qsize(),
                peer.outbox_bytes,
            )
            self.metrics.slow_peer_closed()
            peer.closing = True
            if peer.writer:
                peer.writer.cancel()
            while not peer.outbox.empty():
                peer.outbox.get_nowait()
            peer.outbox_bytes = 0
            task = asyncio.create_task(peer.ws.close(1013, "too slow"))
            self._closers.add(task)
            task.add_done_callback(self._closers.discard)
            return
        peer.outbox.put_nowait(item)
        peer.outbox_bytes += size
        if isinstance(item, Frame):
            self.metrics.slow_peer_send()

    async def _write_loop(self, peer: Peer) -> None:
        """Sends what could not be written at once, in order, waiting for the peer to drain."""
        try:
            while True:
                item = await peer.outbox.get()
                if isinstance(item, Frame):
                    peer.outbox_bytes -= len(item.data)
                if isinstance(item, tuple):
                    code, reason = item
                    if code:
                        await peer.ws.close(code, reason)
                    return
                peer.sending = True
                await peer.ws.send(item.data, text=item.text)
                peer.sending = False
        except ConnectionClosed:
            return
