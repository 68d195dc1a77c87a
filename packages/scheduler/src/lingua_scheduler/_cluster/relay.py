"""Messages between instances: one Redis stream per instance (its inbox), read through a
consumer group and acknowledged only once handled.

What travels: a job's messages for a node another instance holds (`job_assign`, `job_cancel`,
`job_audio`: kind `to_node`), and that node's answers (`job_ack`, `job_result`, `asr_partial`:
kind `from_node`) back to the instance that assigned the job. Per entry: one XADD from the
sender (written in the caller's turn, `inbox_writer.py`), and its share of one XREADGROUP and
one XACK at the receiver (the acks of one read go with the next read). An entry holds one
message, or several handled in order (a node's ack with an answer ready at once,
`ack_hold.py`): its fields are a header `h` and a message `m`, once per message. An entry is XACKed
after it was handed to the node's connection or to the core; one that was read but not handled
(Redis went away, the instance stopped) stays pending and is read again first when the reader
starts over (`XREADGROUP ... 0`). When the receiving instance dies, what it had not handled is
recovered by the sender's own failover: an unacknowledged job is reassigned after
`ack_timeout_s`, and a session resumes where its results are kept.

Bounds: what an instance handled is trimmed from its inbox with its next node view
publication (XTRIM MINID, one command a second), so an inbox holds up to two seconds of
traffic; at most `INBOX_MAX_ENTRIES` (approximate trimming of the oldest, for a reader that
does not keep up), and it expires `INBOX_TTL_S` after its instance last refreshed it (with
each node view publication), so the inbox of an instance that died does not stay in Redis; a
sender never creates an inbox without an expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import Connection
from redis.exceptions import RedisError, ResponseError

from .inbox_writer import InboxWriter
from .link import Op, RedisLink, connect

log = logging.getLogger("lingua.scheduler.cluster")

GROUP = "lingua"
INBOX_MAX_ENTRIES = 10_000
INBOX_TTL_S = 60
READ_BLOCK_MS = 1000
READ_COUNT = 64


@dataclass(frozen=True, slots=True)
class Entry:
    """One message read from the inbox. `message_type` and `job_id` travel beside the message
    (for a job's messages), so a receiver that only passes it on need not parse it."""

    kind: str
    sender: str
    node_id: str
    payload: bytes
    message_type: str = ""
    job_id: str = ""


Handler = Callable[[Entry], None]


def pack_header(
    kind: str, sender: str, node_id: str, message_type: str = "", job_id: str = ""
) -> bytes:
    """An entry's routing fields, as one stream field (one argument to send, one element to
    parse, whatever the message is)."""
    return orjson.dumps([kind, sender, node_id, message_type, job_id])


def unpack(header: bytes, payload: bytes) -> Entry:
    """Raises ValueError for a header that does not parse."""
    try:
        kind, sender, node_id, message_type, job_id = orjson.loads(header)
        return Entry(str(kind), str(sender), str(node_id), payload, str(message_type), str(job_id))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"unreadable inbox entry header: {exc}") from exc


def unpack_all(fields: list[Any]) -> list[Entry]:
    """An entry's messages, in order: its fields are `h` (a header) and `m` (its message),
    once per message. Raises ValueError for an entry of any other shape."""
    if not fields or len(fields) % 4:
        raise ValueError(f"inbox entry of {len(fields)} fields")
    out: list[Entry] = []
    for at in range(0, len(fields), 4):
        h, header, m, payload = fields[at : at + 4]
        if h != b"h" or m != b"m":
            raise ValueError("inbox entry fields out of order")
        out.append(unpack(header, payload))
    return out


class Relay:
    def __init__(self, link: RedisLink, url: str, instance: str, prefix: str) -> None:
        self._link = link
        self._url = url
        self.instance = instance
        self._prefix = prefix
        self.inbox = self.inbox_of(instance)
        self._reader: asyncio.Task[None] | None = None
        self.sent = 0  # messages
        self.entries_sent = 0  # XADDs (an entry holds one message or several)
        self.received = 0
        self.inboxes_created = 0  # sends that found no inbox (see `send`)
        self._writer = InboxWriter(url)
        self._handled_up_to: bytes | None = None  # the last entry id handled, not trimmed yet

    def inbox_of(self, instance: str) -> str:
        return f"{self._prefix}inbox:{instance}"

    async def start(self, handle: Handler) -> None:
        client: aioredis.Redis = connect(self._url)
        with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists already
            await client.xgroup_create(self.inbox, GROUP, id="0", mkstream=True)
        await client.pexpire(self.inbox, INBOX_TTL_S * 1000)
        await self._writer.start()
        self._reader = asyncio.create_task(self._read(client, handle), name="lingua-relay")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        await self._writer.close()

    def send(
        self,
        instance: str,
        kind: str,
        node_id: str,
        payload: bytes,
        *,
        message_type: str = "",
        job_id: str = "",
    ) -> None:
        """Send one message to `instance`'s inbox (see `send_all`)."""
        header = pack_header(kind, self.instance, node_id, message_type, job_id)
        self._add(instance, [b"h", header, b"m", payload], 1)

    def send_all(self, instance: str, kind: str, node_id: str, payloads: list[bytes]) -> None:
        """Send several messages to `instance`'s inbox as one entry, handled there in this
        order: one XADD, written at once on the inbox writer's connection
        (`inbox_writer.py`), or, while that is not usable, queued on the link with this turn's
        other writes. `NOMKSTREAM`: an inbox exists while its instance lives (it created it
        and keeps its expiry fresh), so the common case needs no PEXPIRE of its own; when it
        does not exist (Redis restarted empty, or the instance died long ago), `_add_missing`
        creates it with an expiry, so the entry waits for a reader."""
        header = pack_header(kind, self.instance, node_id)
        fields: list[Any] = []
        for payload in payloads:
            fields += [b"h", header, b"m", payload]
        self._add(instance, fields, len(payloads))

    def _add(self, instance: str, fields: list[Any], messages: int) -> None:
        """One entry of `fields` (a header and a message, once per message) to an inbox."""
        key = self.inbox_of(instance)
        self.sent += messages
        self.entries_sent += 1
        limit = ["MAXLEN", "~", INBOX_MAX_ENTRIES, "*", *fields]

        def replied(reply: Any) -> None:
            if reply is None:
                self._add_missing(key, limit)

        def through_link() -> None:
            self._link.submit(Op(add, done))

        def add(pipe: Pipeline) -> int:
            pipe.execute_command("XADD", key, "NOMKSTREAM", *limit)
            return 1

        def done(result: list[Any] | BaseException) -> None:
            if not isinstance(result, BaseException) and result:
                replied(result[0])

        if not self._writer.write(["XADD", key, "NOMKSTREAM", *limit], replied, through_link):
            through_link()

    def _add_missing(self, key: str, limit: list[Any]) -> None:
        """The rare path of `send_all`: the inbox was not there; create it (expiring, so the
        inbox of an instance that died does not stay). In order: every message sent before
        the inbox exists again takes this path in the order it was sent."""
        self.inboxes_created += 1

        def add(pipe: Pipeline) -> int:
            pipe.execute_command("XADD", key, *limit)
            pipe.pexpire(key, INBOX_TTL_S * 1000)
            return 2

        self._link.submit(Op(add))

    def keep_alive(self, pipe: Pipeline) -> int:
        """Added to each view publication: this instance's inbox stays while it lives, and
        loses what was handled (entries are read in order, so everything up to the last one
        handled is done; one read again after a restart is then gone, and skipped)."""
        pipe.pexpire(self.inbox, INBOX_TTL_S * 1000)
        last = self._handled_up_to
        if last is None:
            return 1
        self._handled_up_to = None
        ms, _, seq = last.decode().partition("-")
        pipe.xtrim(self.inbox, minid=f"{ms}-{int(seq) + 1}", approximate=False)
        return 2

    async def _read(self, client: aioredis.Redis, handle: Handler) -> None:
        """Pending entries first (read, maybe handled, but not acknowledged before the reader
        started over), then new ones, blocking in Redis (no polling). The acks of one read go
        in one pipeline with the next read: no round trip of their own. An ack lost to an
        outage leaves its entries pending: read again when the reader starts over, and dropped
        as stale by the core. One connection of its own, spoken to directly (not through the
        client's pool, retries and reply callbacks, which cost more than the read itself)."""
        pool = client.connection_pool
        conn = await pool.get_connection()
        pending_after: Any = "0"  # None once the pending ones are read: new entries only
        done: list[Any] = []  # handled, not acknowledged yet
        try:
            while True:
                pending_first = pending_after is not None
                try:
                    entries = await self._ack_and_read(conn, done, pending_after)
                except (RedisError, OSError) as exc:
                    await conn.disconnect()  # replies may be left unread: start clean
                    if "NOGROUP" in str(exc):  # Redis lost the stream (restarted empty)
                        with contextlib.suppress(ResponseError, RedisError, OSError):
                            await client.xgroup_create(self.inbox, GROUP, id="0", mkstream=True)
                    else:
                        log.warning("relay: reading the inbox failed: %s", exc)
                        await asyncio.sleep(0.5)  # Redis is away; the link notices it too
                    pending_after, done = "0", []
                    continue
                done = []
                if pending_first:
                    pending_after = entries[-1][0] if entries else None
                for entry_id, fields in entries:
                    done.append(entry_id)
                    self._handled_up_to = entry_id
                    if fields is None:  # pending, but trimmed: it was handled before
                        continue
                    try:
                        messages = unpack_all(fields)
                    except ValueError:  # one bad entry must not stop the inbox
                        log.exception("relay: unreadable entry %s", entry_id)
                        continue
                    for message in messages:
                        self.received += 1
                        try:
                            handle(message)
                        except Exception:  # nor one message another of the same entry
                            log.exception("relay: handling %s failed", entry_id)
        finally:
            await pool.release(conn)
            await client.aclose()

    async def _ack_and_read(self, conn: Connection, done: list[Any], after: Any) -> list[Any]:
        """XACK `done` (if any) and XREADGROUP in one round trip: the entries pending after
        `after`, or (None) new entries, waiting up to `READ_BLOCK_MS` for one. Returns
        [[entry id, [field, value, ...]], ...]."""
        read: list[Any] = ["XREADGROUP", "GROUP", GROUP, self.instance, "COUNT", READ_COUNT]
        if after is None:
            read += ["BLOCK", READ_BLOCK_MS]
        read += ["STREAMS", self.inbox, ">" if after is None else after]
        commands = [["XACK", self.inbox, GROUP, *done], read] if done else [read]
        await conn.send_packed_command(conn.pack_commands(commands))
        replies = [await conn.read_response() for _ in commands]
        streams = replies[-1]
        return list(streams[0][1]) if streams else []
