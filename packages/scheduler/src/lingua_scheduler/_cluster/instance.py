"""What one scheduler instance adds to join a cluster: the Redis link, the shared tables it
gives the core, and the two hooks the shell calls around the core for the few messages that
need the cluster (`prepares`: read shared state first; `settles`: write it before the reply
goes out). Every other message, utterances included, goes to the core exactly as in a single
scheduler, with no Redis call. Here too: the node view loop and jobs across instances; the
sessions and rooms part is `session_sync.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from lingua_protocol import (
    AsrPartial,
    JobAck,
    JobAssign,
    JobError,
    JobResult,
    Message,
    NodeRegister,
    PairingCodeRequest,
    ProtocolError,
    RoomCreate,
    RoomJoin,
    SessionInit,
    parse_node_message,
    parse_scheduler_message,
)
from redis.asyncio.client import Pipeline

from .._core.actions import Action, Close, Send
from .._core.tables import CoreTables
from .._core.trust import TOTAL, GuessGuard
from .._settings import SchedulerSettings
from .ack_hold import AckHold, HeldAck
from .link import ClusterUnavailable, Op, RedisLink
from .node_view import (
    VIEW_INTERVAL_S,
    VIEW_TTL_S,
    ViewReader,
    parse_remote,
    published,
    remote_conn,
)
from .relay import Entry, Relay
from .rooms import parse_client
from .session_sync import SessionSync
from .shared_sessions import REFRESH_EVERY_S
from .stores import PREFIX, ClusterBuckets, ClusterPairing, RedisCredentialStore

if TYPE_CHECKING:
    from .._core.engine import SchedulerCore

MAX_RELAYED_JOBS = 10_000
"""Jobs this instance remembers relaying to its nodes for another instance (oldest forgotten
first; a job lives at most its timeout)."""
FROM_NODE = (JobAck, JobResult, AsrPartial)

log = logging.getLogger("lingua.scheduler.cluster")

__all__ = ["Cluster", "ClusterUnavailable"]


class Cluster:
    def __init__(self, settings: SchedulerSettings, clock: Callable[[], float]) -> None:
        if not settings.redis_url:
            raise ValueError("a cluster needs redis_url")
        self.settings = settings
        self.clock = clock
        self.link = RedisLink(settings.redis_url)
        self.credentials = RedisCredentialStore(self.link)
        self.pairing: ClusterPairing | None = None
        self.guesses: GuessGuard | None = None
        self.new_node_ids: ClusterBuckets | None = None
        self._buckets: list[ClusterBuckets] = []
        self.instance = secrets.token_hex(6)
        self.relay = Relay(self.link, settings.redis_url, self.instance, PREFIX)
        self._view = ViewReader()
        self._proxies: set[str] = set()  # remote connection ids the core holds as nodes
        self._relayed: OrderedDict[str, str] = OrderedDict()  # job id -> assigning instance
        self._core: SchedulerCore | None = None
        self._apply: Callable[[list[Action]], None] = lambda _actions: None
        self._send_local: Callable[[str, Message], bool] = lambda _conn, _message: False
        self._send_local_text: Callable[[str, bytes], bool] = lambda _conn, _text: False
        self._viewer: asyncio.Task[None] | None = None
        self._acks = AckHold(settings.cluster_ack_hold_ms / 1000.0)
        self._acks_timer: asyncio.TimerHandle | None = None
        self._acks_armed_for = 0.0
        self.sessions = SessionSync(settings, self.link, self.relay, self.instance, clock)

    def remote_nodes(self) -> int:
        return len(self._proxies)

    def relayed_clients(self) -> int:
        return self.sessions.relayed_clients()

    @property
    def up(self) -> bool:
        """Redis answers: new sessions and node registrations are taken."""
        return self.link.up

    async def start(self) -> None:
        """Connect to Redis; raises `ClusterUnavailable` when it does not answer (an instance
        does not start without its cluster)."""
        await self.link.start()
        self.link.on_reconnect.append(self.credentials.republish)
        if self.pairing is not None:
            self.link.on_reconnect.append(self.pairing.republish)
        for buckets in self._buckets:
            buckets.use_clock(self.clock)
        await self.relay.start(self._from_inbox)
        self._viewer = asyncio.create_task(self._view_loop(), name="lingua-node-view")

    def attach(
        self,
        core: SchedulerCore,
        apply: Callable[[list[Action]], None],
        send_local: Callable[[str, Message], bool],
        close_local: Callable[[str, int, str], None],
        send_local_text: Callable[[str, bytes], bool],
    ) -> None:
        """The shell's core, how it carries out actions, and how it sends to (or closes) one
        of its own connections (`send_local` is False when that connection is gone;
        `send_local_text` writes a message already encoded as JSON text, as it is)."""
        self._core = core
        self._apply = apply
        self._send_local = send_local
        self._send_local_text = send_local_text
        self.sessions.attach(core, apply, send_local, close_local)

    async def close(self) -> None:
        if self._viewer is not None:
            self._viewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._viewer
        if self._acks_timer is not None:
            self._acks_timer.cancel()
        self._send_acks(self._acks.drain())  # a clean stop does not wait for their window
        await self.relay.close()
        with contextlib.suppress(ClusterUnavailable):
            await self._withdraw()
        await self.link.close()

    # ------------------------------------------------------------------ the core's tables

    def customize(self, tables: CoreTables) -> None:
        """Give the core cluster-wide pairing and rate limits (credentials come in through
        `SchedulerCore(credentials=...)`)."""
        s = tables.config
        keys = s.rate_limit_max_keys
        old = tables.pairing
        pairing = ClusterPairing(old.ttl_s, randbelow=old.randbelow)
        pairing.attach(self.link, self.clock)
        tables.pairing = self.pairing = pairing
        trust = tables.trust
        per_min = s.wrong_codes_per_min
        total = s.wrong_codes_per_min_total
        trust.guesses = self.guesses = GuessGuard(
            self._shared("guess", per_min / 60.0, per_min, keys),
            self._shared("guess_total", total / 60.0, total, 1),
        )
        trust.heartbeats = self._shared(
            "heartbeat", s.node_heartbeats_per_s, s.node_heartbeat_burst, keys
        )
        requests = s.pairing_requests_per_min
        trust.pairing_requests = self._shared("pairing_request", requests / 60.0, requests, keys)
        ids = s.new_node_ids_per_hour
        trust.new_node_ids = self.new_node_ids = self._shared(
            "new_node_id", ids / 3600.0, ids, keys
        )

    def _shared(self, name: str, rate: float, burst: float, max_keys: int) -> ClusterBuckets:
        buckets = ClusterBuckets(self.link, name, rate, burst, max_keys)
        self._buckets.append(buckets)
        return buckets

    # ------------------------------------------------------------------ shell hooks

    @staticmethod
    def prepares(message: Message) -> bool:
        """Whether the shell must `prepare` before the core sees `message`."""
        return isinstance(
            message, NodeRegister | RoomCreate | RoomJoin | PairingCodeRequest | SessionInit
        )

    @staticmethod
    def settles(message: Message) -> bool:
        """Whether the core's answer to `message` waits for its Redis writes (so a client that
        reads the answer, then goes to another instance, finds them there)."""
        return isinstance(message, PairingCodeRequest | RoomCreate | RoomJoin | SessionInit)

    async def prepare(
        self, message: Message, address: str, registered: bool, now: float, conn_id: str = ""
    ) -> bool:
        """Read into this instance what the core will decide `message` on. True when the
        message was handed to another instance instead (a join of a room homed there): the
        core must not see it. Raises `ClusterUnavailable` when Redis does not answer."""
        assert self.guesses is not None
        assert self.pairing is not None
        assert self.new_node_ids is not None
        if isinstance(message, RoomJoin) or (
            isinstance(message, SessionInit) and message.pairing_code
        ):
            await self._fetch_guesses(address, now)  # a code will be checked
        if isinstance(message, RoomJoin):
            return await self.sessions.join_elsewhere(conn_id, message)
        if isinstance(message, SessionInit) and message.resume_token:
            await self.sessions.find(message.resume_token, message.last_received_index, now)
        elif isinstance(message, SessionInit) and message.pairing_code:
            node_id = await self.pairing.fetch(message.pairing_code, now)
            if node_id is not None:
                await self.credentials.fetch(node_id)
        elif isinstance(message, NodeRegister) and not registered:
            if message.node_id:
                await self.credentials.fetch(message.node_id)
            await self.new_node_ids.fetch(address, now)
        return False

    def after(self, conn_id: str, message: Message) -> None:
        """After the core handled `message` (see `SessionSync.after`)."""
        self.sessions.after(conn_id, message)

    def relays_client(self, conn_id: str, message: Message) -> bool:
        """A message from a client whose session another instance holds goes there."""
        return self.sessions.relays_client(conn_id, message)

    def client_gone(self, conn_id: str) -> None:
        self.sessions.client_gone(conn_id)

    async def _fetch_guesses(self, address: str, now: float) -> None:
        assert self.guesses is not None
        per_address, total = self.guesses.per_address, self.guesses.total
        assert isinstance(per_address, ClusterBuckets)
        assert isinstance(total, ClusterBuckets)
        await per_address.fetch(address, now)
        await total.fetch(TOTAL, now)

    async def settle(self) -> None:
        """Wait until this instance's writes so far are in Redis."""
        await self.link.flush()

    # ------------------------------------------------------------------ node view

    async def _view_loop(self) -> None:
        rounds = 0
        every = max(1, int(REFRESH_EVERY_S / VIEW_INTERVAL_S))
        while True:
            rounds += 1
            try:
                if rounds % every == 0:
                    self.sessions.refresh()
                await self._publish_and_read()
            except ClusterUnavailable as exc:
                log.debug("node view not refreshed: %s", exc)
            except Exception:  # keep the view alive; the next interval tries again
                log.exception("node view refresh failed")
            await asyncio.sleep(VIEW_INTERVAL_S)  # a period, not a synchronisation

    def _local_nodes(self) -> dict[str, bytes]:
        assert self._core is not None
        return {
            n.node_id: published(n)
            for n in self._core.registry.connected()
            if n.conn_id is not None and parse_remote(n.conn_id) is None
        }

    async def _publish_and_read(self) -> None:
        mine = self._local_nodes()
        key = f"{PREFIX}nodes:{self.instance}"
        instances_key = f"{PREFIX}instances"
        ttl_ms = int(VIEW_TTL_S * 1000)

        def publish(pipe: Pipeline) -> int:
            added = self.relay.keep_alive(pipe)
            pipe.delete(key)
            if mine:
                pipe.hset(key, mapping=mine)  # type: ignore[arg-type]
                pipe.pexpire(key, ttl_ms)
            pipe.set(f"{PREFIX}alive:{self.instance}", b"1", px=ttl_ms)
            pipe.sadd(instances_key, self.instance)
            pipe.smembers(instances_key)  # last: its reply is read below
            return added + 4 + (2 if mine else 0)

        replies = await self.link.call(publish)
        members = replies[-1]
        others = sorted(
            m.decode() for m in members if isinstance(m, bytes) and m.decode() != self.instance
        )

        def read(pipe: Pipeline) -> int:
            for other in others:
                pipe.exists(f"{PREFIX}alive:{other}")
                pipe.hgetall(f"{PREFIX}nodes:{other}")
            return 2 * len(others)

        replies = await self.link.call(read) if others else []
        views: dict[str, Any] = {}
        gone: list[str] = []
        for i, other in enumerate(others):
            if replies[2 * i]:
                views[other] = replies[2 * i + 1]
            else:
                gone.append(other)  # stopped publishing: died, or stopped
        if gone:

            def forget(pipe: Pipeline) -> int:
                pipe.srem(instances_key, *gone)
                return 1

            self.link.submit(Op(forget))
        self._refresh(views)

    def _refresh(self, views: dict[str, Any]) -> None:
        """Show the core every node the other instances published; drop the ones gone."""
        assert self._core is not None
        now = self.clock()
        seen: set[str] = set()
        actions: list[Action] = []
        for instance, entries in views.items():
            for raw_id, raw in (entries or {}).items():
                node_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
                conn = remote_conn(instance, node_id)
                node = self._view.read(conn, raw)
                if node is None:
                    log.warning("unreadable node %s published by instance %s", node_id, instance)
                    continue
                seen.add(conn)
                actions += self._core.remote_node(
                    conn, node.register, node.usage, node.draining, now
                )
                if self._core.registry.for_conn(conn) is not None:
                    self._proxies.add(conn)
        for conn in sorted(self._proxies - seen):
            self._proxies.discard(conn)
            actions += self._core.node_disconnected(conn, now)
        self._view.keep_only(seen)
        if actions:
            self._apply(actions)

    async def _withdraw(self) -> None:
        """On a clean stop: this instance's nodes leave every view at once."""

        def remove(pipe: Pipeline) -> int:
            pipe.delete(f"{PREFIX}nodes:{self.instance}", f"{PREFIX}alive:{self.instance}")
            pipe.srem(f"{PREFIX}instances", self.instance)
            return 2

        await self.link.call(remove)

    # ------------------------------------------------------------------ jobs across instances

    def forward(self, action: Action) -> bool:
        """Carry out an action for a node another instance holds: a job's messages go to that
        instance's inbox; anything else for it (a close, an error) is not sent. False when
        `action` is not for a remote node."""
        client = parse_client(action.conn_id)
        if client is not None:
            instance, conn = client
            if isinstance(action, Send):
                self.relay.send(instance, "to_client", conn, action.message.to_json_bytes())
            elif isinstance(action, Close):
                body = orjson.dumps({"code": action.code, "reason": action.reason})
                self.relay.send(instance, "close_client", conn, body)
            return True
        target = parse_remote(action.conn_id)
        if target is None:
            return False
        message = action.message if isinstance(action, Send) else None
        job_id = getattr(message, "job_id", None)
        if message is not None and job_id is not None:
            instance, node_id = target
            # As JSON text: the frame the other instance passes on to its node as it is.
            self.relay.send(
                instance,
                "to_node",
                node_id,
                message.to_json_bytes(),
                message_type=message.type,
                job_id=job_id,
            )
        return True

    def relays(self, node_id: str | None, message: Message, data: bytes = b"") -> bool:
        """A node's answer about a job another instance assigned: sent back to that instance
        (True) instead of this instance's core. `data`: the frame `message` was parsed from;
        JSON text (a binary frame starts with a length far above any header's) travels as
        it is, a binary frame as the message's JSON."""
        if node_id is None or not isinstance(message, FROM_NODE):
            return False
        origin = self._relayed.get(message.job_id or "")
        if origin is None:
            return False
        job_id = message.job_id
        if isinstance(message, JobResult):
            self._relayed.pop(job_id, None)
        text = data if data[:1] == b"{" else message.to_json_bytes()
        if isinstance(message, JobAck):
            self._send_acks(self._acks.hold(job_id, origin, node_id, text, self.clock()))
            self._arm_acks()
            return True
        held = self._acks.take(job_id)
        if held is not None and held.origin == origin and held.node_id == node_id:
            # The answer came within the ack's window: both cross in one entry, in order.
            self.relay.send_all(origin, "from_node", node_id, [held.text, text])
            return True
        if held is not None:
            self._send_acks([held])
        self.relay.send(origin, "from_node", node_id, text)
        return True

    def _send_acks(self, acks: list[HeldAck]) -> None:
        for ack in acks:
            self.relay.send(ack.origin, "from_node", ack.node_id, ack.text)

    def _arm_acks(self) -> None:
        """One timer, for the oldest held ack (`ack_hold.py`)."""
        due = self._acks.next_due()
        if due is None or self._acks_timer is not None:
            return
        delay = max(0.0, due - self.clock())
        self._acks_armed_for = due
        self._acks_timer = asyncio.get_running_loop().call_later(delay, self._release_acks)

    def _release_acks(self) -> None:
        """The timer: the acks whose window ended go alone; armed again for the next one."""
        self._acks_timer = None
        # At least what the timer was armed for, whatever the clock says: it always progresses.
        self._send_acks(self._acks.due(max(self.clock(), self._acks_armed_for)))
        self._arm_acks()

    def _from_inbox(self, entry: Entry) -> None:
        assert self._core is not None
        kind, sender, node_id, payload = entry.kind, entry.sender, entry.node_id, entry.payload
        try:
            if kind == "to_node":
                self._to_own_node(entry)
            elif kind == "from_node":
                message = parse_node_message(payload, verify_audio=False)
                conn = remote_conn(sender, node_id)
                self._apply(self._core.node_message(conn, message, self.clock()))
            else:
                self.sessions.from_inbox(kind, sender, node_id, payload)
        except ProtocolError as exc:
            log.warning("relay: unreadable %s message from instance %s: %s", kind, sender, exc)

    def _to_own_node(self, entry: Entry) -> None:
        """A job's message for one of this instance's nodes: written to the node's connection
        as the JSON text it came as (no parse, no second encoding of its audio); parsed only
        to refuse a job whose node is not here any more."""
        assert self._core is not None
        sender, node_id, job_id = entry.sender, entry.node_id, entry.job_id
        node = self._core.registry.nodes.get(node_id)
        conn = node.conn_id if node is not None else None
        if (
            conn is not None
            and parse_remote(conn) is None
            and self._send_local_text(conn, entry.payload)
        ):
            if entry.message_type == "job_assign" and job_id:
                self._relayed[job_id] = sender
                self._relayed.move_to_end(job_id)
                while len(self._relayed) > MAX_RELAYED_JOBS:
                    self._relayed.popitem(last=False)
            return
        message = parse_scheduler_message(entry.payload, verify_audio=False)
        if isinstance(message, JobAssign):  # the node left this instance: refuse at once
            refusal = message.answer(
                node_id,
                success=False,
                error=JobError(code="NODE_UNAVAILABLE", message="node not on this instance"),
            )
            self.relay.send(sender, "from_node", node_id, refusal.to_json_bytes())
