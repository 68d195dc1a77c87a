"""One instance's link to Redis: an ordered, bounded queue of operations sent in pipelines.

The core is synchronous and never waits on Redis; what it changes is queued here and sent by
one worker task, in the order it was queued, as one pipeline per turn of the event loop (so
a burst of writes costs one round trip). A read the shell needs before it feeds the core goes
through the same queue (`call`), so it sees every write queued before it. `flush()` waits
until everything queued so far has been answered.

Redis unreachable: the link is `up = False`; queued operations fail (a read raises
`ClusterUnavailable`, a write is counted in `lost_writes` and logged once per interval), and
the worker pings with backoff until Redis answers, then runs the `on_reconnect` callbacks
(which publish this instance's state again). At most `max_queued` operations wait; more are
refused like a lost write, so a Redis that stalls cannot grow an instance's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("lingua.scheduler.cluster")

MAX_QUEUED = 100_000
"""Operations waiting for Redis at most (each a few hundred bytes)."""
RECONNECT_MIN_S = 0.1
RECONNECT_MAX_S = 2.0
COMMAND_TIMEOUT_S = 2.0
"""A Redis round trip that takes longer counts as Redis being unavailable."""
HEALTH_INTERVAL_S = 1.0
"""An idle link pings Redis this often, so an outage is noticed without traffic."""


def connect(url: str) -> aioredis.Redis:
    """A client that tries a failed command again on a fresh connection (twice, 50 ms then
    100 ms later), so a Redis restart costs a pause, not an outage; a command may then run
    twice, which every use here tolerates (a relayed message twice is dropped as stale by the
    core, a SET or a bucket charge twice is harmless)."""
    return aioredis.from_url(
        url,
        socket_timeout=COMMAND_TIMEOUT_S,
        socket_connect_timeout=COMMAND_TIMEOUT_S,
        decode_responses=False,
        retry=Retry(ExponentialBackoff(cap=0.1, base=0.05), 2),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )


class ClusterUnavailable(Exception):
    """Redis did not answer: what needs the cluster is refused until it does."""


@dataclass(slots=True)
class Op:
    """Commands to add to a pipeline (`add` returns how many it added) and what to do with
    their replies (`done`, called in the worker with the replies, or an exception)."""

    add: Callable[[Pipeline], int]
    done: Callable[[list[Any] | BaseException], None] | None = None
    future: asyncio.Future[list[Any]] | None = field(default=None)


class RedisLink:
    def __init__(self, url: str, *, max_queued: int = MAX_QUEUED) -> None:
        self.redis: aioredis.Redis = connect(url)
        self.max_queued = max_queued
        self.up = False
        self.lost_writes = 0
        self.round_trips = 0
        self.on_reconnect: list[Callable[[], Awaitable[None]]] = []
        self._queue: deque[Op] = deque()
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._last_loss_log = 0.0
        self._state_changed = asyncio.Event()

    async def start(self) -> None:
        """Connect (raises `ClusterUnavailable` when Redis does not answer) and start the worker."""
        try:
            await self.redis.ping()
        except (RedisError, OSError) as exc:
            raise ClusterUnavailable(f"redis unreachable: {exc}") from exc
        self._set_up(True)
        self._worker = asyncio.create_task(self._run(), name="lingua-redis-link")

    def _set_up(self, up: bool) -> None:
        if up != self.up:
            self.up = up
            self._state_changed.set()

    async def wait_until(self, up: bool) -> None:
        """Until the link is up (or down): for tests and operators' tools."""
        while self.up != up:
            self._state_changed.clear()
            await self._state_changed.wait()

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        await self.redis.aclose()

    def submit(self, op: Op) -> None:
        """Queue a write; it is sent in order with the others, its reply goes to `op.done`."""
        if len(self._queue) >= self.max_queued:
            self._lost(1, "queue full")
            if op.done is not None:
                op.done(ClusterUnavailable("redis queue full"))
            return
        self._queue.append(op)
        self._idle.clear()
        self._wake.set()

    async def call(self, add: Callable[[Pipeline], int]) -> list[Any]:
        """Queue a read (after every write queued before it) and wait for its replies."""
        if not self.up:
            raise ClusterUnavailable("redis unavailable")
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self.submit(Op(add, None, future))
        if future.done() and future.exception() is not None:
            raise ClusterUnavailable("redis queue full")
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT_S * 2):
                return await future
        except TimeoutError as exc:
            raise ClusterUnavailable("redis did not answer in time") from exc

    async def flush(self) -> None:
        """Wait until every operation queued so far has been answered; raises
        `ClusterUnavailable` when Redis is down or does not answer in time."""
        if not self.up:
            raise ClusterUnavailable("redis unavailable")
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT_S * 2):
                await self._idle.wait()
        except TimeoutError as exc:
            raise ClusterUnavailable("redis did not answer in time") from exc
        if not self.up:
            raise ClusterUnavailable("redis unavailable")

    # ------------------------------------------------------------------ worker

    async def _run(self) -> None:
        delay = RECONNECT_MIN_S
        while True:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(HEALTH_INTERVAL_S):
                        await self._wake.wait()
            if not self.up:
                if not await self._reconnect():
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RECONNECT_MAX_S)
                    continue
                delay = RECONNECT_MIN_S
            if not self._queue:  # idle: make sure Redis is still there
                await self._send([Op(_ping)])
                continue
            batch = list(self._queue)
            self._queue.clear()
            await self._send(batch)

    async def _send(self, batch: list[Op]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        counts = [op.add(pipe) for op in batch]
        try:
            replies = await pipe.execute(raise_on_error=False)
            self.round_trips += 1
        except (RedisError, OSError) as exc:
            self._set_up(False)
            log.warning("redis unavailable: %s", exc)
            self._fail(batch, ClusterUnavailable(str(exc)))
            return
        at = 0
        for op, n in zip(batch, counts, strict=True):
            mine = replies[at : at + n]
            at += n
            self._finish(op, mine)

    @staticmethod
    def _finish(op: Op, result: list[Any] | BaseException) -> None:
        if op.future is not None and not op.future.done():
            if isinstance(result, BaseException):
                op.future.set_exception(result)
            else:
                op.future.set_result(result)
        if op.done is not None:
            try:
                op.done(result)
            except Exception:  # a bad reply handler must not stop the link for everyone
                log.exception("redis reply handler failed")

    def _fail(self, batch: list[Op], exc: ClusterUnavailable) -> None:
        writes = sum(1 for op in batch if op.future is None)
        if writes:
            self._lost(writes, str(exc))
        for op in batch:
            self._finish(op, exc)
        rest = list(self._queue)
        self._queue.clear()
        for op in rest:
            self._finish(op, exc)

    def _lost(self, n: int, why: str) -> None:
        self.lost_writes += n
        now = asyncio.get_running_loop().time()
        if now - self._last_loss_log >= 10.0:
            self._last_loss_log = now
            log.warning("%d redis writes lost so far (%s)", self.lost_writes, why)

    async def _reconnect(self) -> bool:
        try:
            await self.redis.ping()
        except (RedisError, OSError):
            return False
        log.info("redis reachable again; publishing this instance's state")
        for callback in self.on_reconnect:
            try:
                await callback()
            except (RedisError, OSError, ClusterUnavailable) as exc:
                log.warning("republishing after reconnect failed: %s", exc)
        self._set_up(True)  # after the republishing is queued: it goes out first
        return True


def _ping(pipe: Pipeline) -> int:
    pipe.ping()
    return 1
