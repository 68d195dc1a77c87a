"""Writes to the other instances' inboxes from the caller's turn of the event loop.

A relayed job message is on the latency path of an utterance: going through the link's queue
costs a task switch, a pipeline built for one command, and a wait for the previous pipeline's
replies. Here the XADD is packed and written to a connection of its own at once (as the shell
writes to a WebSocket), and the replies, which come back in order, are matched to their
callbacks by one reader task. Several XADDs can be in flight.

When this connection is not usable (not yet open, lost, or more than `MAX_BUFFERED_BYTES`
waiting in its buffer because Redis does not keep up) `write` returns False and the caller
sends through the link instead, while the connection is opened again in the background.
Writes whose replies are lost with a connection (Redis restarted, say) are sent again through
the link, which retries on a fresh connection: as with the link's own retries, a write may then
reach Redis twice, which every relayed message tolerates (the core drops a stale one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisError, ResponseError

from .link import RECONNECT_MAX_S, connect

log = logging.getLogger("lingua.scheduler.cluster")

MAX_BUFFERED_BYTES = 8 * 1024 * 1024
"""Bytes written but not yet taken by Redis's socket at most; beyond, writes take the link
(whose queue is bounded in operations)."""
MAX_IN_FLIGHT = 10_000
"""Writes waiting for their reply at most; beyond, writes take the link."""

Reply = Callable[[Any], None]
"""Called with the reply (an error reply as a `ResponseError`)."""
Resend = Callable[[], None]
"""Called instead when the connection was lost before the reply: send the write another way."""


class InboxWriter:
    def __init__(self, url: str) -> None:
        self._client = connect(url)
        self._conn: AbstractConnection | None = None
        self._waiting: deque[tuple[Reply, Resend]] = deque()
        self._replied = asyncio.Event()  # set when `_waiting` gains an entry
        self._reader: asyncio.Task[None] | None = None
        self._opening: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        """Open the connection; on failure, writes take the link until it opens."""
        try:
            await self._open()
        except (RedisError, OSError) as exc:
            log.warning("inbox writer: connecting failed, writing through the link: %s", exc)
            self._open_soon()

    async def close(self) -> None:
        self._closed = True
        for task in (self._opening, self._reader):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._drop()
        await self._client.aclose()

    def write(self, command: list[Any], on_reply: Reply, resend: Resend) -> bool:
        """Write `command` now; `on_reply` gets its reply later, or `resend` is called if the
        connection is lost first. False, with nothing written, when the connection is not
        usable (the caller sends another way)."""
        conn = self._conn
        writer = getattr(conn, "_writer", None)  # redis-py's StreamWriter (pinned: <6)
        if conn is None or writer is None or writer.is_closing():
            self._open_soon()
            return False
        if (
            len(self._waiting) >= MAX_IN_FLIGHT
            or writer.transport.get_write_buffer_size() >= MAX_BUFFERED_BYTES
        ):
            return False
        writer.writelines(conn.pack_command(*command))
        self._waiting.append((on_reply, resend))
        self._replied.set()
        return True

    async def _open(self) -> None:
        conn = await self._client.connection_pool.get_connection()
        await conn.connect()
        self._conn = conn
        self._reader = asyncio.create_task(self._read_replies(conn), name="lingua-inbox-writer")

    def _open_soon(self) -> None:
        if self._closed or (self._opening is not None and not self._opening.done()):
            return
        self._opening = asyncio.create_task(self._reopen(), name="lingua-inbox-writer-open")

    async def _reopen(self) -> None:
        delay = 0.1
        while not self._closed:
            try:
                await self._open()
                return
            except (RedisError, OSError) as exc:
                log.debug("inbox writer: reconnecting failed: %s", exc)
            await asyncio.sleep(delay)  # a backoff, not a synchronisation
            delay = min(delay * 2, RECONNECT_MAX_S)

    async def _read_replies(self, conn: AbstractConnection) -> None:
        try:
            while True:
                if not self._waiting:
                    self._replied.clear()
                    await self._replied.wait()
                try:
                    reply: Any = await conn.read_response()
                except ResponseError as exc:  # an error reply: the connection is fine
                    reply = exc
                on_reply, _ = self._waiting.popleft()
                on_reply(reply)
        except (RedisError, OSError) as exc:
            log.warning("inbox writer: connection lost: %s", exc)
            self._conn = None
            with contextlib.suppress(RedisError, OSError):
                await conn.disconnect()
            self._drop()
            self._open_soon()

    def _drop(self) -> None:
        """No reply is coming for the writes still waiting: each is sent again, in order."""
        while self._waiting:
            _, resend = self._waiting.popleft()
            try:
                resend()
            except Exception:  # one failed resend must not stop the others
                log.exception("inbox writer: sending again failed")
