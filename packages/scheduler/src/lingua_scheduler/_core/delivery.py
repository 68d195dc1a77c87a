"""Getting messages to sessions: in order, held for a disconnected client within its byte
budget, and a session's end (its jobs, its room membership).

`Delivery` is the one place that sends to a session rather than to a connection, so the
hold budget, the head-of-line gap timer and the close after the last result hold for every
message whoever produced it (a job result, a room member list, a room's expiry).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from lingua_protocol import (
    ErrorCode,
    JobCancel,
    Message,
    RoomMember,
    RoomMembers,
    SessionCloseAck,
    error_message,
)

from .actions import CLOSE_NORMAL, Action, Close, Send
from .budget import message_bytes, without_audio
from .rooms import Room
from .sessions import Session
from .tables import CoreTables

log = logging.getLogger("lingua.scheduler")


class Delivery:
    def __init__(self, tables: CoreTables) -> None:
        self.config = tables.config
        self.stats = tables.stats
        self.sessions = tables.sessions
        self.jobs = tables.jobs
        self.rooms = tables.rooms
        self.deadlines = tables.deadlines
        self.registry = tables.registry
        self.hold_listener: Callable[[Session, Message], None] | None = None
        """Told of every message held for a disconnected session (a cluster keeps a copy
        where another instance can resume the session); None: nobody is."""

    def arm_gap(self, session: Session) -> None:
        """Schedule the session's head-of-line gap timeout, if it has one (and it moved)."""
        due = session.sequencer.gap_deadline()
        if due is not None and due != session.gap_armed:
            session.gap_armed = due
            self.deadlines.push(due, ("gap", session.session_id))

    def end_in_internal_error(self, session: Session, index: int, now: float) -> list[Action]:
        """A bug after `index` was accepted: end its jobs (and its stream, if streamed) and
        answer it with INTERNAL_ERROR, or it would hold every later result of the session
        forever."""
        session.streams.pop(index, None)
        for job_id in list(session.job_ids):
            job = self.jobs.get(job_id)
            if job is not None and job.utterance_index == index:
                self.jobs.end(job)
        error = error_message(
            ErrorCode.INTERNAL_ERROR,
            "internal error",
            session_id=session.session_id,
            utterance_index=index,
        )
        return self.deliver(session, session.sequencer.finish(index, error, now))

    def deliver(self, session: Session, messages: list[Message]) -> list[Action]:
        """Send what the session's sequencer released; close the session after its last
        result once it asked to close."""
        actions: list[Action] = []
        for message in messages:
            actions += self.to_session(session, message)
        self.arm_gap(session)
        if session.closing and session.sequencer.pending() == 0 and session.conn_id is not None:
            actions.append(Send(session.conn_id, SessionCloseAck(session_id=session.session_id)))
            actions.append(Close(session.conn_id, CLOSE_NORMAL, "session closed"))
            self.drop_session(session)
        return actions

    def to_session(self, session: Session, message: Message) -> list[Action]:
        """Send now, or hold for a disconnected session within `session_hold_bytes`: a result
        over the budget is held without its audio; when even that does not fit the session
        has lost too much to resume faithfully and is ended (its resume gets INVALID_SESSION
        and the client opens a new session)."""
        if session.conn_id is not None:
            return [Send(session.conn_id, message)]
        size = message_bytes(message)
        limit = self.config.session_hold_bytes
        if session.outbox_bytes + size > limit:
            message = without_audio(message, "hold_budget")
            size = message_bytes(message)
        if session.outbox_bytes + size > limit:
            log.warning("session=%s held results over budget; session ended", session.session_id)
            self.stats.count("sessions_over_hold_budget")
            return self.drop_session(session)
        session.outbox.append(message)
        session.outbox_bytes += size
        if self.hold_listener is not None:
            self.hold_listener(session, message)
        return []

    def send_to_session(self, session_id: str, message: Message) -> list[Action]:
        session = self.sessions.get(session_id)
        if session is None:
            return []
        return self.to_session(session, message)

    def drop_session(self, session: Session) -> list[Action]:
        """The session ends: its jobs end unless another room member still waits for them,
        and it leaves its room (the others get the new member list)."""
        self.sessions.drop(session)
        actions: list[Action] = []
        for job_id in list(session.job_ids):
            job = self.jobs.get(job_id)
            if job is None:
                continue
            job.primary = False
            open_stream = job.stream is not None and not job.stream.closed
            if open_stream:
                # No more audio can come: the node stops, and its stream slot is free.
                node = self.registry.nodes.get(job.node_id or "")
                if node is not None and node.conn_id is not None:
                    cancel = JobCancel(
                        job_id=job.job_id, attempt_id=job.attempt_id, reason="session ended"
                    )
                    actions.append(Send(node.conn_id, cancel))
            if not job.listeners or open_stream:
                self.jobs.end(job)
        session.job_ids.clear()
        session.streams.clear()
        return actions + self.leave_room(session)

    def leave_room(self, session: Session) -> list[Action]:
        room = self.rooms.leave(session.session_id)
        if room is None or not room.members:
            return []
        return self.members(room)

    def members(self, room: Room) -> list[Action]:
        """The room's member list, to every member."""
        members = [
            RoomMember(
                session_id=m.session_id,
                display_name=m.display_name,
                preferred_lang=m.preferred_lang,
            )
            for m in room.members.values()
        ]
        actions: list[Action] = []
        for sid in room.members:
            actions += self.send_to_session(sid, RoomMembers(room_code=room.code, members=members))
        return actions
