"""The clock moving on: job deadlines, head-of-line gaps, open streams' close-by times, and
the once-a-second slow tick (node heartbeats, resume grace and idle expiry of sessions, room
expiry)."""

from __future__ import annotations

import logging
from functools import partial

from lingua_protocol import MissingResult, RoomExpired

from .actions import CLOSE_GOING_AWAY, Action, Close
from .deadlines import DeadlineKind
from .delivery import Delivery
from .job_flow import JobFlow
from .node_side import NodeSide
from .stream_side import StreamSide
from .tables import CoreTables

log = logging.getLogger("lingua.scheduler")

SLOW_TICK_S = 1.0
"""Node heartbeat checks, resume-grace and idle expiry, room expiry: once a second."""


class Timers:
    def __init__(
        self,
        tables: CoreTables,
        flow: JobFlow,
        delivery: Delivery,
        nodes: NodeSide,
        streams: StreamSide,
    ) -> None:
        self.s = tables.config
        self.sessions = tables.sessions
        self.registry = tables.registry
        self.jobs = tables.jobs
        self.rooms = tables.rooms
        self.deadlines = tables.deadlines
        self.flow = flow
        self.delivery = delivery
        self.nodes = nodes
        self.streams = streams

    def fire(self, kind: DeadlineKind, ident: str, now: float) -> list[Action]:
        if kind == "job":
            job = self.jobs.get(ident)
            if job is not None and job.deadline is not None and job.deadline <= now:
                return self.flow.deadline_passed(job, now)
            return []
        if kind == "stream":
            return self.streams.deadline(ident, now)
        if kind == "gap":
            session = self.sessions.get(ident)
            if session is None:
                return []
            session.gap_armed = None
            due = session.sequencer.gap_deadline()
            if due is None or due > now:
                self.delivery.arm_gap(session)
                return []
            messages = session.sequencer.skip_gap(now, partial(_gap_missing, session.session_id))
            return self.delivery.deliver(session, messages)
        self.deadlines.push(now + SLOW_TICK_S, ("slow", ""))
        return self.slow_tick(now)

    def slow_tick(self, now: float) -> list[Action]:
        actions: list[Action] = []
        limit = self.s.heartbeat_interval_s * self.s.missed_heartbeats_offline
        for node in self.registry.connected():
            if now - node.last_heartbeat > limit:
                conn = node.conn_id
                assert conn is not None
                actions.append(Close(conn, CLOSE_GOING_AWAY, "missed heartbeats"))
                actions += self.nodes.node_gone(
                    node, f"missed {self.s.missed_heartbeats_offline} heartbeats", now
                )
        self.registry.forget_offline(now, self.s.offline_node_retention_s)
        self.jobs.forget_progress_of_unknown_nodes()
        for session in self.sessions.values():
            if session.conn_id is None and session.disconnected_at is not None:
                if now - session.disconnected_at >= self.s.resume_grace_s:
                    log.info("session=%s resume grace over, dropped", session.session_id)
                    actions += self.delivery.drop_session(session)
            elif (
                session.conn_id is not None
                and now - session.last_activity >= self.s.session_idle_timeout_s
            ):
                actions.append(Close(session.conn_id, CLOSE_GOING_AWAY, "idle timeout"))
                actions += self.delivery.drop_session(session)
        for room in self.rooms.expire(now):
            for sid in room.members:
                actions += self.delivery.send_to_session(
                    sid, RoomExpired(room_code=room.code, reason="idle")
                )
        return actions


def _gap_missing(session_id: str, index: int) -> MissingResult:
    return MissingResult(session_id=session_id, utterance_index=index, reason="result_gap_timeout")
