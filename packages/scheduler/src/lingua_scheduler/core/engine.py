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
    MissingResult,
    RoomExpired,
)

from .actions import Action, Close, Send
from .client_side import ClientSide
from .job_flow import JobFlow
from .jobs import Job
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


class SchedulerCore(NodeSide, JobFlow, ClientSide, RoomSide, CoreState):
    """All scheduler state and rules. Not thread-safe: one event loop drives it."""

    # ------------------------------------------------------------------ time

    def tick(self, now: float) -> list[Action]:
        """Fire every deadline that has passed. Cheap when nothing is due."""
        actions: list[Action] = []
        for job in [j for j in self.jobs.values() if j.deadline is not None and j.deadline <= now]:
            actions += self._job_deadline(job, now)
        for session in list(self.sessions.values()):
            due = session.sequencer.gap_deadline()
            if due is not None and due <= now:
                actions += self._deliver(
                    session,
                    session.sequencer.skip_gap(
                        now,
                        partial(_gap_missing, session.session_id),
                    ),
                )
        if now - self._last_slow_tick >= 1.0:
            self._last_slow_tick = now
            actions += self._slow_tick(now)
        return actions

    def _job_deadline(self, job: Job, now: float) -> list[Action]:
        if job.state == "queued":
            return self._fail(
                job,
                ErrorCode.NODE_OVERLOADED.value,
                f"every node that can run {job.src_lang}->{job.tgt_lang} "
                f"stayed busy for {self.s.queue_timeout_s:.0f} s",
                now,
            )
        node = self.registry.nodes.get(job.node_id or "")
        actions: list[Action] = []
        why = "ack timeout" if job.state == "assigned" else "job timeout"
        if node is not None and node.conn_id is not None:
            actions.append(
                Send(
                    node.conn_id,
                    JobCancel(job_id=job.job_id, attempt_id=job.attempt_id, reason=why),
                )
            )
        self._count("ack_timeouts" if job.state == "assigned" else "job_timeouts")
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
                self.session_by_conn.pop(session.conn_id, None)
                session.conn_id = None
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
            "counters": dict(self.counters),
        }


def _gap_missing(session_id: str, index: int) -> MissingResult:
    return MissingResult(session_id=session_id, utterance_index=index, reason="result_gap_timeout")
