"""The scheduler core: events in (a parsed message from a connection, a lost connection, the
clock moving on), actions out (send this to that connection, close that one).

No sockets and no sleeping: the caller passes `now` (monotonic seconds) into every call, so
failover, ordering and expiry are tested in microseconds with a fake clock.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from lingua_protocol import (
    ErrorCode,
    JobCancel,
    Message,
    MissingResult,
    RoomExpired,
    error_message,
)

from .actions import Action, Close, Send
from .client_side import ClientSide
from .job_flow import JobFlow
from .jobs import Job, JobState
from .node_side import NodeSide
from .room_side import RoomSide
from .state import (  # noqa: F401  (re-exported for the server and tests)
    CLOSE_GOING_AWAY,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    CoreState,
    Observer,
    Session,
    log,
)

SLOW_TICK_S = 1.0
"""Node heartbeat checks, resume-grace and idle expiry, room expiry: once a second."""


class SchedulerCore(NodeSide, JobFlow, ClientSide, RoomSide, CoreState):
    """All scheduler state and rules. Not thread-safe: one event loop drives it."""

    # ------------------------------------------------------------------ events

    def client_message(self, conn_id: str, message: Message, now: float) -> list[Action]:
        """A message from a client. Never raises: a bug inside becomes an `error` (with the
        message's `utterance_index`, whose sequence the utterance path keeps consistent)."""
        try:
            return super().client_message(conn_id, message, now)
        except Exception:
            log.exception("core failed on %s from %s", message.type, conn_id)
            return [Send(conn_id, _internal_error(message))]

    def node_message(self, conn_id: str, message: Message, now: float) -> list[Action]:
        """A message from a node. Never raises (see `client_message`)."""
        try:
            return super().node_message(conn_id, message, now)
        except Exception:
            log.exception("core failed on %s from %s", message.type, conn_id)
            return [Send(conn_id, _internal_error(message))]

    # ------------------------------------------------------------------ time

    def next_deadline(self) -> float | None:
        """When `tick` next has something to do (possibly a deadline that has since moved,
        which costs one cheap wake-up). The shell sleeps until then."""
        return self.deadlines.next()

    def tick(self, now: float) -> list[Action]:
        """Fire every deadline that has passed: O(log n) per due entry, nothing when none is
        due; never a scan over every job or session."""
        actions: list[Action] = []
        for kind, ident in self.deadlines.pop_due(now):
            try:
                actions += self._fire(kind, ident, now)
            except Exception:  # one bad timer must not stop failover for everyone
                log.exception("deadline %s %s failed", kind, ident)
        return actions

    def _fire(self, kind: str, ident: str, now: float) -> list[Action]:
        if kind == "job":
            job = self.jobs.get(ident)
            if job is not None and job.deadline is not None and job.deadline <= now:
                return self._job_deadline(job, now)
            return []
        if kind == "gap":
            session = self.sessions.get(ident)
            if session is None:
                return []
            session.gap_armed = None
            due = session.sequencer.gap_deadline()
            if due is None or due > now:
                self._arm_gap(session)
                return []
            messages = session.sequencer.skip_gap(now, partial(_gap_missing, session.session_id))
            return self._deliver(session, messages)
        self.deadlines.push(now + SLOW_TICK_S, ("slow", ""))
        return self._slow_tick(now)

    def _job_deadline(self, job: Job, now: float) -> list[Action]:
        if job.state is JobState.QUEUED:
            return self._queue_deadline(job, now)
        node = self.registry.nodes.get(job.node_id or "")
        actions: list[Action] = []
        acked = job.state is JobState.RUNNING
        why = "job timeout" if acked else "ack timeout"
        if node is not None and node.conn_id is not None:
            actions.append(
                Send(
                    node.conn_id,
                    JobCancel(job_id=job.job_id, attempt_id=job.attempt_id, reason=why),
                )
            )
        self._count("job_timeouts" if acked else "ack_timeouts")
        return actions + self._retry(job, ErrorCode.JOB_TIMEOUT.value, now)

    def _slow_tick(self, now: float) -> list[Action]:
        actions: list[Action] = []
        limit = self.s.heartbeat_interval_s * self.s.missed_heartbeats_offline
        for node in self.registry.connected():
            if now - node.last_heartbeat > limit:
                conn = node.conn_id
                assert conn is not None
                actions.append(Close(conn, CLOSE_GOING_AWAY, "missed heartbeats"))
                actions += self._node_gone(
                    node, f"missed {self.s.missed_heartbeats_offline} heartbeats", now
                )
        self.registry.forget_offline(now, self.s.offline_node_retention_s)
        for node_id in [n for n in self.progress_at if n not in self.registry.nodes]:
            del self.progress_at[node_id]
        for session in list(self.sessions.values()):
            if session.conn_id is None and session.disconnected_at is not None:
                if now - session.disconnected_at >= self.s.resume_grace_s:
                    log.info("session=%s resume grace over, dropped", session.session_id)
                    actions += self._drop_session(session)
            elif (
                session.conn_id is not None
                and now - session.last_activity >= self.s.session_idle_timeout_s
            ):
                actions.append(Close(session.conn_id, CLOSE_GOING_AWAY, "idle timeout"))
                actions += self._drop_session(session)
        for room in self.rooms.expire(now):
            for sid in room.members:
                actions += self._send_to_session(
                    sid, RoomExpired(room_code=room.code, reason="idle")
                )
        return actions

    # ------------------------------------------------------------------ views

    def cluster(self) -> dict[str, Any]:
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


def _gap_missing(session_id: str, index: int) -> MissingResult:
    return MissingResult(session_id=session_id, utterance_index=index, reason="result_gap_timeout")
