"""The I/O shell: websockets server for /ws/session, /ws/node and /ws/admin, plus /health,
/api/v1/languages, /api/v1/cluster and /metrics over plain HTTP. It parses, calls the core,
and carries out the core's actions.

Before any upgrade it checks what can be checked from the request alone (docs/security.md):
the Origin, the connection limit and, for /ws/admin, the operator token and the lockout of
addresses that sent wrong tokens. Every /ws/* connection then has `first_message_timeout_s`
to register or open a session.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import http
import ipaddress
import logging
import math
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from lingua_protocol import (
    ErrorCode,
    Message,
    NodeControl,
    NodeHeartbeat,
    NodeRegister,
    ProtocolError,
    error_message,
    parse_client_message,
    parse_node_message,
    parse_scheduler_message,
)
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ._core.actions import (
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    Action,
    Close,
    Send,
    SendLatest,
    SetAudioTransport,
)
from ._core.credentials import CredentialStore
from ._core.engine import SchedulerCore
from ._core.limit_log import LimitLog
from ._core.ratelimit import TokenBuckets
from ._core.summary import PublicClusterView, language_summary
from ._inline import InlineConnection
from ._metrics import Metrics
from ._outgoing import WRITE_LIMIT, Frame, Latest, Outgoing, wire, write_now
from ._parse_budget import ParseBudget
from ._settings import SchedulerSettings
from ._sqlite_store import SqliteCredentialStore

if TYPE_CHECKING:
    from ._cluster import Cluster

log = logging.getLogger("lingua.scheduler.server")

OUTBOX_LIMIT = 1024
"""Messages a peer's outbox holds at most (besides `peer_outbox_bytes`)."""
WS_PATHS = ("/ws/session", "/ws/node", "/ws/admin")
TIMER_GRID_S = 0.05
"""The core's deadlines are served on this grid (one wake-up per slot at most)."""
YIELD_AFTER_PARSE_S = 0.001
"""A parse that took longer than this yields the loop before the same peer is read again."""
ACCEPT_FAILED = "socket.accept() out of system resource"
CLOSE_TRY_AGAIN = 1013
KEPT_MESSAGES = (NodeRegister, NodeHeartbeat)
"""Messages whose content the scheduler keeps (so their size is capped by max_register_bytes)."""


@dataclass(slots=True)
class Peer:
    conn_id: str
    ws: ServerConnection
    kind: str
    binary: bool = False  # set only by the core's SetAudioTransport
    outbox: asyncio.Queue[Outgoing] = field(default_factory=lambda: asyncio.Queue(OUTBOX_LIMIT))
    outbox_bytes: int = 0  # bytes of the frames waiting in `outbox`
    latest: dict[tuple[str, int], Latest] = field(default_factory=dict)
    """The `SendLatest` slots waiting in `outbox`, by key: at most one each (so bounded by the
    outbox), replaced in place by a newer message of the same key."""
    writer: asyncio.Task[None] | None = None
    sending: bool = False  # the writer task is inside ws.send(): later messages queue behind
    closing: bool = False  # closed for not reading: nothing more is queued for it
    budget: ParseBudget | None = None  # event-loop time its messages may take to parse
    held: Message | None = None
    """A message `_take` parsed and left to the read loop (it waits on Redis): the frame the
    loop reads next is this one, so the loop runs it without parsing it again."""


def _parse_client_unverified(data: str | bytes) -> Message:
    return parse_client_message(data, verify_audio=False)


class SchedulerServer:
    def __init__(
        self, settings: SchedulerSettings, clock: Callable[[], float] | None = None
    ) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self._store: SqliteCredentialStore | None = (
            SqliteCredentialStore(settings.state_path) if settings.state_path else None
        )
        store: CredentialStore | None = self._store
        self.cluster: Cluster | None = None
        if settings.redis_url:  # imported only here: a single scheduler needs no redis-py
            from ._cluster import Cluster

            self.cluster = Cluster(settings, self.now)
            store = self.cluster.credentials
            self.cluster.credentials.on_conflict = self._credential_conflict
        self.core = SchedulerCore(
            settings,
            observer=self.metrics,
            credentials=store,
            customize=self.cluster.customize if self.cluster is not None else None,
        )
        if self.cluster is not None:
            from ._cluster.metrics import ClusterCollector

            self.cluster.attach(
                self.core, self._apply, self._send_to, self._close_conn, self._send_text_to
            )
            self.metrics.registry.register(ClusterCollector(self.cluster))
        self.metrics.attach(self.core)
        self.peers: dict[str, Peer] = {}
        self._clock = clock
        self._server: Server | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._stopped = False
        self._closers: set[asyncio.Task[None]] = set()
        self._open_ws = 0  # upgraded /ws/* connections now open
        self._open_by_address: dict[str, int] = {}  # the same, per client address (no zeros)
        self._limits = LimitLog(log, settings.limit_log_interval_s, self._monotonic)
        self._token_failures = TokenBuckets(
            settings.admin_failures_per_min / 60.0,
            settings.admin_failures_per_min,
            settings.rate_limit_max_keys,
        )
        self._public_view = PublicClusterView()
        self._previous_handler: Any = None

    @staticmethod
    def _monotonic() -> float:
        return asyncio.get_running_loop().time()

    def now(self) -> float:
        if self._clock is None:  # the loop's clock, looked up once (now() runs per message)
            self._clock = asyncio.get_running_loop().time
        return self._clock()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def _tls(self) -> ssl.SSLContext | None:
        """A server TLS context from `tls_certfile`/`tls_keyfile` (TLS 1.2 or later), or None."""
        cert, key = self.settings.tls_certfile, self.settings.tls_keyfile
        if cert is None and key is None:
            return None
        if cert is None or key is None:
            raise ValueError("tls_certfile and tls_keyfile go together")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert, key)
        return context

    async def start(self) -> None:
        tls = self._tls()
        if self.cluster is not None:
            await self.cluster.start()
        self._server = await serve(
            self._handle,
            self.settings.host,
            self.settings.port,
            process_request=self._http,
            create_connection=InlineConnection,
            ssl=tls,
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
        loop = asyncio.get_running_loop()
        self._previous_handler = loop.get_exception_handler()
        loop.set_exception_handler(self._loop_exception)
        if self.cluster is not None:
            log.info(
                "cluster instance: shared state in redis %s",
                self.settings.public_dict()["redis_url"],
            )
        elif self.settings.state_path is None:
            log.warning("state_path unset: node credentials last only as long as this process")
        scheme = "wss" if tls else "ws"
        log.info("scheduler listening on %s://%s:%d", scheme, self.settings.host, self.port)

    async def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._server:
            self._server.close()
            await self._server.wait_closed()
        loop = asyncio.get_running_loop()
        if loop.get_exception_handler() == self._loop_exception:
            loop.set_exception_handler(self._previous_handler)
        if self._store is not None:
            await asyncio.to_thread(self._store.close)
        if self.cluster is not None:
            await self.cluster.close()

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """asyncio reports each failed `accept()` (file descriptors exhausted) with a
        traceback, once per retry: one line per interval is enough to tell the operator."""
        if str(context.get("message", "")).startswith(ACCEPT_FAILED):
            self._limits.hit("accept() failed", str(context.get("exception", "")))
        elif self._previous_handler is not None:
            self._previous_handler(loop, context)
        else:
            loop.default_exception_handler(context)

    async def serve_forever(self) -> None:
        await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    # ------------------------------------------------------------------ HTTP

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?")[0]
        if path in WS_PATHS:
            return self._upgrade_refusal(connection, request, path)
        if path == "/health":
            if self.cluster is not None and not self.cluster.up:
                # Out of the balancer's rotation for new connections; the open ones go on.
                return self._json(
                    http.HTTPStatus.SERVICE_UNAVAILABLE, {"status": "redis unavailable"}
                )
            return self._json(http.HTTPStatus.OK, {"status": "ok"})
        if path == "/api/v1/languages":
            response = self._json(
                http.HTTPStatus.OK, language_summary(self.core.registry.nodes.values())
            )
            response.headers["Access-Control-Allow-Origin"] = "*"
            return response
        if path == "/api/v1/cluster":
            return self._cluster(connection, request)
        if path == "/metrics":
            headers = Headers([("Content-Type", "text/plain; version=0.0.4; charset=utf-8")])
            return Response(200, "OK", headers, self.metrics.render())
        return self._json(http.HTTPStatus.NOT_FOUND, {"error": "not found", "path": path})

    def _cluster(self, connection: ServerConnection, request: Request) -> Response:
        """Public: counts and node capabilities, no ids. With the operator token: everything."""
        if request.headers.get("Authorization") is None:
            core = self.core
            counts = {
                "sessions": len(core.sessions),
                "rooms": len(core.rooms.rooms),
                "jobs_in_flight": len(core.jobs),
                "queue_size": len(core.queue),
            }
            body = self._public_view.render(core.registry, counts)
            return self._json(http.HTTPStatus.OK, body)
        refusal = self._operator_refusal(connection, request)
        if refusal is not None:
            return refusal
        full = self.core.cluster()
        full["settings"] = self.settings.public_dict()
        return self._json(http.HTTPStatus.OK, full)

    def _upgrade_refusal(
        self, connection: ServerConnection, request: Request, path: str
    ) -> Response | None:
        """An HTTP refusal before the upgrade, or None to let the WebSocket open."""
        origin = request.headers.get("Origin")
        if origin is not None and not self._origin_allowed(origin, path):
            self._limits.hit(f"origin refused on {path}", origin[:100])
            return self._json(http.HTTPStatus.FORBIDDEN, {"error": "origin not allowed"})
        if self._open_ws >= self.settings.max_connections:
            self._limits.hit("connection limit", f"max_connections={self.settings.max_connections}")
            response = self._json(
                http.HTTPStatus.SERVICE_UNAVAILABLE, {"error": "too many connections"}
            )
            response.headers["Retry-After"] = "5"
            return response
        address = self._address(connection, request)
        if self._open_by_address.get(
            address, 0
        ) >= self.settings.max_connections_per_address and not _is_loopback(address):
            self._limits.hit("connection limit per address", address)
            response = self._json(
                http.HTTPStatus.TOO_MANY_REQUESTS, {"error": "too many connections from here"}
            )
            response.headers["Retry-After"] = "5"
            return response
        if path == "/ws/admin":
            return self._operator_refusal(connection, request)
        if self.cluster is not None and not self.cluster.up:
            # Without Redis this instance cannot check a node's credential or resume a
            # session held elsewhere: refuse new connections (they try their next URL) and
            # keep serving the ones it has.
            self._limits.hit("redis unavailable: new connections refused")
            response = self._json(
                http.HTTPStatus.SERVICE_UNAVAILABLE, {"error": "cluster state unavailable"}
            )
            response.headers["Retry-After"] = "2"
            return response
        return None

    def _origin_allowed(self, origin: str, path: str) -> bool:
        """Browsers send Origin; other clients (nodes, the terminal client) send none. Any
        page may open a session (the web client is served from anywhere) unless
        `session_origins` says otherwise; node and operator endpoints take no page at all
        unless listed in `operator_origins`."""
        if path == "/ws/session":
            allowed = self.settings.session_origins
            return "*" in allowed or origin in allowed
        return origin in self.settings.operator_origins

    def _operator_refusal(self, connection: ServerConnection, request: Request) -> Response | None:
        """None when the request carries the operator token (`Authorization: Bearer ...`).
        No token configured: operator access is off. An address that sent
        `admin_failures_per_min` wrong tokens is locked out until its bucket refills."""
        expected = self.settings.admin_token
        if not expected:
            return self._json(http.HTTPStatus.FORBIDDEN, {"error": "operator access is off"})
        address = self._address(connection, request)
        now = self._monotonic()
        if not self._token_failures.allows(address, now):
            self._limits.hit("operator token lockout", address)
            return self._json(http.HTTPStatus.TOO_MANY_REQUESTS, {"error": "locked out"})
        scheme, _, given = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), expected.encode()
        ):
            return None
        self._token_failures.charge(address, now)
        self._limits.hit("wrong operator token", address)
        response = self._json(http.HTTPStatus.UNAUTHORIZED, {"error": "operator token required"})
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

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
        address = self._address(ws, ws.request)
        self._open_ws += 1
        self._open_by_address[address] = self._open_by_address.get(address, 0) + 1
        try:
            await self._connection(ws, address)
        finally:
            self._open_ws -= 1
            left = self._open_by_address.pop(address) - 1
            if left:
                self._open_by_address[address] = left

    async def _connection(self, ws: ServerConnection, address: str) -> None:
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
        budget = peer.budget = ParseBudget(
            self.settings.peer_parse_ms_per_s, self.settings.peer_parse_burst_ms
        )
        peer.writer = asyncio.create_task(self._write_loop(peer))
        self.peers[peer.conn_id] = peer
        self.core.trust.peer_connected(peer.conn_id, address)
        limit = self.settings.max_message_bytes
        deadline: float | None = self._monotonic() + self.settings.first_message_timeout_s
        inline = ws if isinstance(ws, InlineConnection) else None
        take = functools.partial(self._take, peer, parse)
        try:
            while True:
                if inline is not None and deadline is None:
                    # Nothing of this peer's is pending here: its next message may be handled
                    # in the callback that reads it (`_inline`), until this loop holds one.
                    inline.take = take
                # Text frames stay bytes: the parser reads UTF-8 itself, and the audio in them
                # is relayed as the bytes it arrived as (see lingua_protocol._splice).
                if deadline is None:
                    data = await ws.recv(decode=False)
                else:
                    try:
                        async with asyncio.timeout_at(deadline):
                            data = await ws.recv(decode=False)
                    except TimeoutError:
                        self._limits.hit(f"/ws/{kind} first message deadline")
                        self._enqueue(peer, (CLOSE_POLICY, f"no {_FIRST[kind]} in time"))
                        break
                if inline is not None:
                    inline.take = None
                pending, peer.held = peer.held, None  # parsed inline, left to this loop
                if pending is None:
                    if budget.tokens_ms < 0:
                        wait_s = budget.wait_s(self._monotonic())
                        if wait_s > 0:
                            # This peer's messages took more than its share of the loop to
                            # parse: it waits, its next message unparsed and the rest unread,
                            # while everyone else is served.
                            self._limits.hit(f"/ws/{kind} parse budget")
                            await asyncio.sleep(wait_s)
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
                    message, cost = self._parse_charged(peer, parse, data)
                    if cost > YIELD_AFTER_PARSE_S:
                        # recv() returns frames already buffered without yielding: after a
                        # costly parse, let every other peer run before this one's next message.
                        await asyncio.sleep(0)
                    if message is not None:
                        pending = self._dispatch(peer, message, data)
                if pending is not None and not await self._run_clustered(peer, pending, address):
                    break
                if deadline is not None and self._established(peer):
                    deadline = None
        except ConnectionClosed:
            pass
        finally:
            if inline is not None:
                inline.take = None  # nothing more is handled for a peer that is gone
            self.peers.pop(peer.conn_id, None)
            self.core.trust.peer_gone(peer.conn_id)
            if self.cluster is not None and kind == "session":
                self.cluster.client_gone(peer.conn_id)
            event = self.core.node_disconnected if kind == "node" else self.core.client_disconnected
            self._apply(event(peer.conn_id, self.now()))
            if peer.writer:
                # Let queued messages (an error before a close) go out, then stop.
                with contextlib.suppress(asyncio.QueueFull):
                    peer.outbox.put_nowait((0, ""))
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(peer.writer, 2.0)

    def _parse_charged(
        self, peer: Peer, parse: Callable[[bytes], Message], data: bytes
    ) -> tuple[Message | None, float]:
        """The message, or None once the peer has been told why not; and the seconds its parse
        took, charged to the peer's parse budget."""
        started = time.perf_counter()
        refused: ProtocolError | None = None
        try:
            message = parse(data)
        except ProtocolError as exc:
            refused = exc
        cost = time.perf_counter() - started
        assert peer.budget is not None
        peer.budget.spend(cost)
        if refused is not None:
            self._send(peer, error_message(refused.code, refused.message, field=refused.field))
            return None, cost
        kept_limit = self.settings.max_register_bytes
        if len(data) > kept_limit and isinstance(message, KEPT_MESSAGES):
            # The scheduler keeps a node's register for as long as it knows the node: its
            # size is bounded on its own, not by the limit for audio-carrying frames.
            self._send(peer, _too_large(message.type, len(data), kept_limit))
            return None, cost
        return message, cost

    def _dispatch(self, peer: Peer, message: Message, data: bytes) -> Message | None:
        """Carry out a parsed message; or return it when it is decided on cluster-wide state,
        which `_run_clustered` reads from Redis first (the read loop waits for that)."""
        cluster = self.cluster
        if cluster is not None:
            if peer.kind == "node" and self._relayed(peer, message, data):
                return None
            if cluster.relays_client(peer.conn_id, message):
                return None
            if cluster.prepares(message):
                return message
        self._run(peer, message)
        return None

    def _take(self, peer: Peer, parse: Callable[[bytes], Message], data: bytes) -> bool:
        """An established peer's message, handled in the callback that read it (`_inline`):
        what the read loop does for it, minus the waits. Left to the loop (False): a message
        over the size limit, which the loop answers before closing; and one that must wait
        for Redis, parsed here and kept in `peer.held` for the loop to run before anything
        after it. After a costly parse, or with the peer's parse budget spent, the peer's
        next messages go through the loop, which yields or waits before them."""
        if len(data) > self.settings.max_message_bytes:
            return False
        message, cost = self._parse_charged(peer, parse, data)
        assert peer.budget is not None
        if cost > YIELD_AFTER_PARSE_S or peer.budget.tokens_ms < 0:
            ws = peer.ws
            if isinstance(ws, InlineConnection):
                ws.take = None
        if message is None:
            return True
        peer.held = self._dispatch(peer, message, data)
        return peer.held is None

    def _address(self, connection: ServerConnection, request: Request) -> str:
        """The client's IP address, for the limits kept per address. From a proxy listed in
        `trusted_proxies`, the last address it appended to `X-Forwarded-For` (earlier entries
        are whatever the client claimed); from anyone else, the socket's peer."""
        remote = connection.remote_address
        peer = str(remote[0]) if remote else "unknown"
        if peer in self.settings.trusted_proxies:
            forwarded = request.headers.get("X-Forwarded-For")
            if forwarded:
                last = forwarded.rsplit(",", 1)[-1].strip()
                if last:
                    return _limit_key(last[:64])
        return _limit_key(peer)

    def _established(self, peer: Peer) -> bool:
        """The peer has registered (node) or opened a session (client)."""
        if peer.kind == "node":
            return self.core.registry.for_conn(peer.conn_id) is not None
        return self.core.sessions.for_conn(peer.conn_id) is not None

    async def _admin(self, ws: ServerConnection) -> None:
        """Operator commands: one `node_control` (with the target `node_id`) per connection.
        The operator token was checked before the upgrade (`_operator_refusal`)."""
        try:
            async with asyncio.timeout(self.settings.first_message_timeout_s):
                message = parse_scheduler_message(await ws.recv())
            node_id = message.node_id if isinstance(message, NodeControl) else None
            if not isinstance(message, NodeControl) or node_id is None:
                raise ProtocolError(
                    ErrorCode.INVALID_MESSAGE, "expected node_control with node_id", "node_id"
                )
        except ProtocolError as exc:
            await ws.send(error_message(exc.code, exc.message, field=exc.field).to_json())
            await ws.close()
            return
        except TimeoutError:
            await ws.close(CLOSE_POLICY, "no node_control in time")
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

    async def _run_clustered(self, peer: Peer, message: Message, address: str) -> bool:
        """`_run` for a message decided on cluster-wide state: read it from Redis first, and
        for some (`Cluster.settles`) let the core's writes reach Redis before its answer goes
        out. False, with the connection closed (1013, try again later), when Redis does not
        answer: the peer goes on to another URL."""
        assert self.cluster is not None
        from ._cluster.link import ClusterUnavailable

        handler = self.core.node_message if peer.kind == "node" else self.core.client_message
        registered = self._established(peer)
        try:
            if await self.cluster.prepare(message, address, registered, self.now(), peer.conn_id):
                return True  # handed to another instance
            actions = handler(peer.conn_id, message, self.now())
            self.cluster.after(peer.conn_id, message)
            if self.cluster.settles(message):
                await self.cluster.settle()
        except ClusterUnavailable as exc:
            log.warning("%s: %s refused, cluster unavailable: %s", peer.conn_id, message.type, exc)
            self._enqueue(peer, (CLOSE_TRY_AGAIN, "cluster unavailable"))
            return False
        except Exception:  # a bug must not take down other connections (as in `_run`)
            log.exception("cluster hook failed on %s from %s", message.type, peer.conn_id)
            self._send(peer, error_message(ErrorCode.INTERNAL_ERROR, "internal error"))
            return True
        self._apply(actions)
        return True

    def _relayed(self, peer: Peer, message: Message, data: bytes) -> bool:
        """A node's answer about a job another instance assigned goes back there."""
        assert self.cluster is not None
        node = self.core.registry.for_conn(peer.conn_id)
        return self.cluster.relays(node.node_id if node else None, message, data)

    def _close_conn(self, conn_id: str, code: int, reason: str) -> None:
        peer = self.peers.get(conn_id)
        if peer is not None:
            self._enqueue(peer, (code, reason))

    def _send_to(self, conn_id: str, message: Message) -> bool:
        """Send to one of this instance's connections; False when it is gone."""
        peer = self.peers.get(conn_id)
        if peer is None:
            return False
        self._send(peer, message)
        return True

    def _send_text_to(self, conn_id: str, text: bytes) -> bool:
        """Send a message another instance encoded (JSON text, UTF-8) to one of this
        instance's connections as it is; False when it is gone."""
        peer = self.peers.get(conn_id)
        if peer is None:
            return False
        self._enqueue(peer, Frame.of(text, text=True))
        return True

    def _credential_conflict(self, node_id: str) -> None:
        """Two instances bound one new node id to different secrets at once; Redis kept the
        other: this instance's connection of that node goes (it reconnects and is checked)."""
        node = self.core.registry.nodes.get(node_id)
        if node is not None and node.conn_id is not None:
            peer = self.peers.get(node.conn_id)
            if peer is not None:
                self._enqueue(peer, (CLOSE_POLICY, "node id bound elsewhere"))

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
                if self.cluster is not None:  # a node another instance holds
                    self.cluster.forward(action)
                continue
            if isinstance(action, Send):
                if isinstance(action, SendLatest):
                    self._send_latest(peer, action.message, action.key)
                else:
                    self._send(peer, action.message)
            elif isinstance(action, Close):
                self._enqueue(peer, (action.code, action.reason))
            elif isinstance(action, SetAudioTransport):
                peer.binary = action.binary
        self._arm()

    def _arm(self) -> None:
        """Wake up at the core's next deadline (one heap peek per event; the timer moves only
        when the deadline comes earlier than the one already set)."""
        due = self.core.next_deadline()
        if due is not None and due != float("-inf"):
            # Deadlines are seconds long (acks, jobs, gaps): waking on a 50 ms grid serves
            # every one due in that slot with one wake-up, instead of one per job at 100
            # utterances a second (most of them stale by then).
            due = math.ceil(due / TIMER_GRID_S) * TIMER_GRID_S
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
        """In the transport the core chose for this peer (`SetAudioTransport`)."""
        self._enqueue(peer, wire(message, peer.binary))

    def _send_latest(self, peer: Peer, message: Message, key: tuple[str, int]) -> None:
        """A partial: it replaces the one of the same utterance still waiting in the outbox,
        if any (keeping that one's place), else it goes out like any message."""
        frame = wire(message, peer.binary)
        waiting = peer.latest.get(key)
        if waiting is None or peer.closing:
            self._enqueue(peer, Latest(key, frame))
            return
        peer.outbox_bytes += frame.size - waiting.frame.size
        waiting.frame = frame
        self.metrics.partial_coalesced()

    def _enqueue(self, peer: Peer, item: Outgoing) -> None:
        if peer.closing:
            return
        idle = peer.outbox.empty() and not peer.sending  # nothing ahead of it to overtake
        if isinstance(item, Frame):
            if idle and write_now(peer.ws, item):
                return
            size = item.size
        elif isinstance(item, Latest):
            if idle and write_now(peer.ws, item.frame):
                return
            peer.latest[item.key] = item
            size = item.frame.size
        else:
            size = 0
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
            peer.latest.clear()
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
                if isinstance(item, Latest):
                    # From here on a newer partial of this key queues behind: never overtakes.
                    del peer.latest[item.key]
                    item = item.frame
                if isinstance(item, Frame):
                    peer.outbox_bytes -= item.size
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


_FIRST = {"node": "node_register", "session": "session_init"}


def _limit_key(address: str) -> str:
    """The key per-address limits count under: an IPv4 address, or an IPv6 address's /64
    (one subscriber commonly holds a whole /64, so counting /128s would give it 2^64 tries)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _is_loopback(address: str) -> bool:
    """Loopback peers are local processes (a reverse proxy carrying everyone, a benchmark, a
    local cluster): they are not held to the per-address connection limit. Behind a proxy,
    list it in `trusted_proxies` and its clients are counted by their own addresses."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _too_large(kind: str, size: int, limit: int) -> Message:
    return error_message(
        ErrorCode.MESSAGE_TOO_LARGE, f"{kind} of {size} bytes exceeds {limit}", field="type"
    )
