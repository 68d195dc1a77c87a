"""The hub's HTTP server: uvicorn's h11 protocol with the connection limits a public server
needs, which uvicorn alone does not give.

- **Header deadline.** uvicorn only times out idle keep-alive connections; a connection that
  sends its request headers one byte at a time (slowloris) would stay open for ever. Here a
  connection must finish each request's headers within `header_timeout_s` of its first byte
  (or of its opening), or it is closed.
- **Connection cap.** Beyond `max_connections`, the oldest connection with no request in
  progress (still sending headers, or idle between requests) is closed to make room, so a flood
  of idle connections cannot lock out a client that sends its request at once; when every
  connection is busy, the new one gets a 503 and is closed. uvicorn's `limit_concurrency`
  is not used: it answers 503 when the count is reached even when the connections holding it
  are idle, which is exactly the flood case.
- The cap is kept below the process's open-file limit (raised to the hard limit at start when
  allowed), so accepting never fails with "too many open files".

This subclasses uvicorn's `H11Protocol` (its `conn`, `transport` and callbacks are not a
public API): the package pins uvicorn and h11 below their next releases for that reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any

import h11
import uvicorn
from fastapi import FastAPI
from lingua_protocol import raise_open_files_limit
from uvicorn.protocols.http.h11_impl import H11Protocol

from ._settings import HubSettings

log = logging.getLogger("lingua.hub")

FD_RESERVE = 64
"""Open files kept free for the store, the database and the listening socket."""

_REFUSAL_BODY = b'{"code":"TOO_MANY_CONNECTIONS","message":"every connection is busy, retry later"}'
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(_REFUSAL_BODY), _REFUSAL_BODY)
)
"""The answer to a connection over the cap when no other connection can make room."""


def connection_budget(wanted: int) -> int:
    """`wanted`, or fewer when the open-file limit cannot hold that many connections; raises
    the soft open-file limit towards the hard one first."""
    soft, _ = raise_open_files_limit(wanted + FD_RESERVE)
    if soft is None:
        return wanted
    return max(1, min(wanted, soft - FD_RESERVE))


def guarded_protocol(header_timeout_s: float, max_connections: int) -> type[H11Protocol]:
    """An `H11Protocol` class whose connections share one cap and one eviction order."""
    live: set[H11Protocol] = set()
    waiting: OrderedDict[H11Protocol, None] = OrderedDict()  # no request in progress, oldest 1st

    class GuardedH11Protocol(H11Protocol):
        _header_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
            super().connection_made(transport)  # type: ignore[arg-type]
            live.add(self)
            if len(live) > max_connections and not self._evict_oldest_waiting():
                self.transport.write(REFUSAL)
                self._drop()
                return
            self._await_request()

        def data_received(self, data: bytes) -> None:
            if self._header_deadline is None and self.conn.their_state is h11.IDLE:
                self._await_request()  # an idle keep-alive connection starts its next request
            super().data_received(data)
            self._note_progress()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                waiting[self] = None  # idle until the next request: uvicorn's keep-alive timer
                self._note_progress()  # a pipelined request may have started already

        def connection_lost(self, exc: Exception | None) -> None:
            self._forget()
            super().connection_lost(exc)

        # --- the guard ---------------------------------------------------------------------

        def _await_request(self) -> None:
            waiting[self] = None
            if self._header_deadline is None:
                self._header_deadline = self.loop.call_later(header_timeout_s, self._too_slow)

        def _note_progress(self) -> None:
            if self.conn.their_state is not h11.IDLE:  # the request's headers are complete
                self._cancel_deadline()
                waiting.pop(self, None)

        def _too_slow(self) -> None:
            self._header_deadline = None
            if self.conn.their_state is h11.IDLE:
                self._drop()

        def _evict_oldest_waiting(self) -> bool:
            while waiting:
                oldest, _ = waiting.popitem(last=False)
                if oldest is not self and isinstance(oldest, GuardedH11Protocol):
                    oldest._drop()
                    return True
            return False

        def _cancel_deadline(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _forget(self) -> None:
            self._cancel_deadline()
            live.discard(self)
            waiting.pop(self, None)

        def _drop(self) -> None:
            self._forget()
            if not self.transport.is_closing():
                self.transport.close()

    return GuardedH11Protocol


def build_server(app: FastAPI, settings: HubSettings, log_level: str = "info") -> uvicorn.Server:
    """A uvicorn server for `app` with every limit of `settings` applied."""
    max_connections = connection_budget(settings.max_connections)
    if max_connections < settings.max_connections:
        log.warning(
            "max_connections lowered from %d to %d by the open-file limit",
            settings.max_connections,
            max_connections,
        )
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": log_level.lower(),
        "http": guarded_protocol(settings.header_timeout_s, max_connections),
        "ws": "none",
        "lifespan": "off",
        "timeout_keep_alive": settings.keep_alive_timeout_s,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
    }
    return uvicorn.Server(uvicorn.Config(app, **options))
