"""The scheduler core: events in (a parsed message from a connection, a lost connection, the
clock moving on), actions out (send this to that connection, close that one).

No sockets and no sleeping: the caller passes `now` (monotonic seconds) into every call, so
failover, ordering and expiry are tested in microseconds with a fake clock.

`SchedulerCore` is a thin facade. The state lives in tables that own their invariants
(`tables.CoreTables`); the rules live in handler classes that receive the tables they need
(`node_side`, `client_side`, `room_side`, `stream_side`, `job_flow`, `delivery`,
`timers`). The settings are
a plain value passed in, and every random draw comes from one `Randomness`, so a run replays
from its events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from lingua_protocol import (
    ErrorCode,
    Message,
    NodeCommand,
    NodeRegister,
    ResourceUsage,
    error_message,
)

from .._settings import SchedulerSettings
from .actions import Action, Send
from .client_side import ClientSide
from .credentials import CredentialStore
from .delivery import Delivery
from .errors import CoreError
from .job_flow import JobFlow
from .node_side import NodeSide
from .randomness import Randomness
from .room_side import RoomSide
from .sessions import Session, SessionState
from .stream_side import StreamSide
from .tables import CoreTables, NullObserver, Observer
from .timers import Timers

log = logging.getLogger("lingua.scheduler")


class SchedulerCore:
    """All scheduler state and rules. Not thread-safe: one event loop drives it.

    `settings` is read, never changed; `randomness` defaults to `Randomness.secure(seed)`
    with the `seed` setting; `credentials` persists node credential bindings (in memory by
    default); `customize` may swap tables for other implementations of the same interfaces
    before the handlers receive them (a cluster's shared pairing and rate limits)."""

    def __init__(
        self,
        settings: SchedulerSettings,
        *,
        randomness: Randomness | None = None,
        observer: Observer | None = None,
        credentials: CredentialStore | None = None,
        customize: Callable[[CoreTables], None] | None = None,
    ) -> None:
        tables = CoreTables.build(
            settings,
            randomness or Randomness.secure(settings.seed),
            observer or NullObserver(),
            credentials,
        )
        if customize is not None:  # before the handlers take their tables
            customize(tables)
        self.tables = tables
        delivery = self._delivery = Delivery(tables)
        flow = JobFlow(tables, delivery)
        streams = StreamSide(tables, flow, delivery)
        self._nodes = NodeSide(tables, flow, delivery, streams)
        self._clients = ClientSide(tables, flow, delivery, RoomSide(tables, delivery), streams)
        self._timers = Timers(tables, flow, delivery, self._nodes, streams)
        # The tables, for the shell's views and for tests.
        self.s = settings
        self.sessions = tables.sessions
        self.jobs = tables.jobs
        self.queue = tables.jobs.queue
        self.registry = tables.registry
        self.rooms = tables.rooms
        self.pairing = tables.pairing
        self.trust = tables.trust
        self.counters = tables.stats.counters
        self._deadlines = tables.deadlines

    # ------------------------------------------------------------------ events

    def client_message(self, conn_id: str, message: Message, now: float) -> list[Action]:
        """A message from a client. Never raises: a refusal (`CoreError`) becomes its `error`,
        a bug inside becomes INTERNAL_ERROR (with the message's `utterance_index`, whose
        sequence the utterance path keeps consistent)."""
        try:
            return self._clients.client_message(conn_id, message, now)
        except CoreError as exc:
            return [Send(conn_id, exc.to_message())]
        except Exception:
            log.exception("core failed on %s from %s", message.type, conn_id)
            return [Send(conn_id, _internal_error(message))]

    def node_message(self, conn_id: str, message: Message, now: float) -> list[Action]:
        """A message from a node. Never raises (see `client_message`)."""
        try:
            return self._nodes.node_message(conn_id, message, now)
        except CoreError as exc:
            return [Send(conn_id, exc.to_message())]
        except Exception:
            log.exception("core failed on %s from %s", message.type, conn_id)
            return [Send(conn_id, _internal_error(message))]

    def client_disconnected(self, conn_id: str, now: float) -> list[Action]:
        """A client connection is gone; its session waits `resume_grace_s` for a resume."""
        return self._clients.client_disconnected(conn_id, now)

    def node_disconnected(self, conn_id: str, now: float) -> list[Action]:
        """A node connection is gone; its jobs move on to other nodes."""
        return self._nodes.node_disconnected(conn_id, now)

    def remote_node(
        self,
        conn_id: str,
        register: NodeRegister,
        usage: ResourceUsage | None,
        draining: bool,
        now: float,
    ) -> list[Action]:
        """A node held by another instance of a cluster, as published there (`conn_id` names
        the link to it; see `NodeSide.remote_node`). It leaves with `node_disconnected`."""
        return self._nodes.remote_node(conn_id, register, usage, draining, now)

    def adopt_session(
        self,
        state: SessionState,
        last_received: int | None,
        now: float,
        held: Sequence[Message] = (),
    ) -> None:
        """Rebuild a session another instance of a cluster held, disconnected, so that its
        client's resume (the next `client_message`) finds it (`ClientSide.adopt_session`)."""
        self._clients.adopt_session(state, last_received, now, held)

    def on_hold(self, listener: Callable[[Session, Message], None] | None) -> None:
        """Be told of every message held for a disconnected session (`Delivery.to_session`)."""
        self._delivery.hold_listener = listener

    def drop_session(self, session_id: str) -> list[Action]:
        """End a session here without a word to its client (it moved to another instance)."""
        session = self.sessions.get(session_id)
        return self._delivery.drop_session(session) if session is not None else []

    def control_node(self, node_id: str, command: NodeCommand, now: float) -> list[Action]:
        """Operator action (drain/resume/shutdown/reload_config) on a node; no actions when
        the node is not connected."""
        return self._nodes.control_node(node_id, command, now)

    # ------------------------------------------------------------------ time

    def next_deadline(self) -> float | None:
        """When `tick` next has something to do (possibly a deadline that has since moved,
        which costs one cheap wake-up). The shell sleeps until then."""
        return self._deadlines.next()

    def tick(self, now: float) -> list[Action]:
        """Fire every deadline that has passed: O(log n) per due entry, nothing when none is
        due; never a scan over every job or session."""
        actions: list[Action] = []
        for kind, ident in self._deadlines.pop_due(now):
            try:
                actions += self._timers.fire(kind, ident, now)
            except Exception:  # one bad timer must not stop failover for everyone
                log.exception("deadline %s %s failed", kind, ident)
        return actions

    # ------------------------------------------------------------------ views

    def cluster(self) -> dict[str, Any]:
        """The operator's view of everything (ids included)."""
        nodes = [n.summary() for n in self.registry.nodes.values()]
        by_status: dict[str, int] = {}
        for n in self.registry.nodes.values():
            by_status[n.status] = by_status.get(n.status, 0) + 1
        return {
            "nodes": nodes,
            "ready_nodes": by_status.get("ready", 0),
            "nodes_by_status": by_status,
            "sessions": [
                {
                    "session_id": s.session_id,
                    "connected": s.conn_id is not None,
                    "src_lang": s.src_lang,
                    "tgt_lang": s.tgt_lang,
                    "paired_node_id": s.paired_node_id,
                    "pending_results": s.sequencer.pending(),
                    "room_code": self.rooms.by_session.get(s.session_id),
                }
                for s in self.sessions.values()
            ],
            "rooms": [
                {
                    "room_code": r.code,
                    "members": [
                        {
                            "session_id": m.session_id,
                            "display_name": m.display_name,
                            "preferred_lang": m.preferred_lang,
                        }
                        for m in r.members.values()
                    ],
                }
                for r in self.rooms.rooms.values()
            ],
            "jobs_in_flight": len(self.jobs),
            "queue_size": len(self.queue),
            "queue_bytes": self.queue.bytes,
            "counters": dict(self.counters),
        }


def _internal_error(message: Message) -> Message:
    index = getattr(message, "utterance_index", None)
    return error_message(
        ErrorCode.INTERNAL_ERROR,
        "internal error",
        utterance_index=index if isinstance(index, int) else None,
    )
