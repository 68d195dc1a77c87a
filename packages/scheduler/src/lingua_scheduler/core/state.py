"""State shared by every part of the scheduler core, and the helpers they use."""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from lingua_protocol import (
    SUPPORTED_PROTOCOL_MAJORS,
    JobAck,
    JobResult,
    Message,
    SessionCloseAck,
)

from ..settings import SchedulerSettings
from .actions import Action, Close, Send
from .budget import message_bytes, without_audio
from .credentials import CredentialStore
from .deadlines import Deadlines
from .jobs import Job, JobQueue, JobState
from .pairing import PairingService
from .registry import NodeRecord, NodeRegistry, Thresholds
from .rooms import RoomManager
from .selection import CapableIndex
from .sessions import Session, SessionTable
from .trust import TrustState

log = logging.getLogger("lingua.scheduler")

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_GOING_AWAY = 1001


class Observer(Protocol):
    """Receives metrics from the core (the shell exports them to Prometheus)."""

    def job_outcome(self, outcome: str) -> None: ...
    def dispatch_latency(self, seconds: float) -> None: ...


class _NullObserver:
    def job_outcome(self, outcome: str) -> None:
        pass

    def dispatch_latency(self, seconds: float) -> None:
        pass


def _version_ok(version: str | None) -> bool:
    return version is None or version.split(".")[0] in SUPPORTED_PROTOCOL_MAJORS


class CoreState:
    """The scheduler's state and the helpers every part of the core uses. The rules live in
    the mixins (node side, job flow, client side, rooms) that `SchedulerCore` combines."""

    def __init__(
        self,
        settings: SchedulerSettings | None = None,
        *,
        rng: random.Random | None = None,
        observer: Observer | None = None,
        token: Callable[[int], str] | None = None,
        credentials: CredentialStore | None = None,
    ) -> None:
        self.s = settings or SchedulerSettings()
        self.rng = rng or random.Random(self.s.seed)
        # Session ids and resume tokens: secrets by default; a test or a replay injects its own.
        self.token: Callable[[int], str] = token or secrets.token_urlsafe
        self.observer: Observer = observer or _NullObserver()
        self.registry = NodeRegistry(
            Thresholds(
                self.s.degraded_cpu_percent,
                self.s.degraded_mem_percent,
                self.s.degraded_gpu_mem_percent,
            )
        )
        self.pairing = PairingService(self.s.pairing_code_ttl_s)
        self.trust = TrustState(self.s, credentials)
        self.capable = CapableIndex(self.registry)
        self.rooms = RoomManager(self.s.room_max_members, self.s.room_idle_timeout_s)
        self.sessions = SessionTable()
        self.jobs: dict[str, Job] = {}
        self.queue = JobQueue(self.s.max_queue, self.s.max_queue_bytes)
        self.deadlines = Deadlines()
        self.deadlines.push(float("-inf"), ("slow", ""))
        # When each node last finished a job: a queued job waits as long as a node that could
        # run it keeps finishing jobs (it is making progress), and fails only when none does.
        self.progress_at: dict[str, float] = {}
        self.counters: dict[str, int] = {}
        self._job_seq = 0
        # Job ids are unique across scheduler restarts without a random draw per job: a late
        # result from before a restart can never match a new job.
        self._job_prefix = secrets.token_hex(4)

    # ------------------------------------------------------------------ helpers

    def _count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def _job_log(self, job: Job, state: str, now: float, **extra: Any) -> None:
        if not log.isEnabledFor(logging.INFO):
            return  # four of these per utterance: skip the formatting when nobody reads them
        tail = "".join(f" {k}={v}" for k, v in extra.items())
        log.info(
            "job=%s state=%s session=%s index=%d node=%s attempt=%d elapsed_ms=%.1f%s",
            job.job_id,
            state,
            job.session_id,
            job.utterance_index,
            job.node_id or "-",
            job.attempt,
            (now - job.created_at) * 1000.0,
            tail,
        )

    def _end_job(self, job: Job) -> None:
        """Forget a job that has ended (result, error, or its session gone): O(1)."""
        job.move(JobState.DONE)
        self.jobs.pop(job.job_id, None)
        self.queue.remove(job)
        session = self.sessions.get(job.session_id)
        if session is not None:
            session.job_ids.discard(job.job_id)
        node = self.registry.nodes.get(job.node_id or "")
        if node is not None:
            node.in_flight.discard(job.job_id)

    def _set_deadline(self, job: Job, when: float | None) -> None:
        job.deadline = when
        if when is not None:
            self.deadlines.push(when, ("job", job.job_id))

    def _arm_gap(self, session: Session) -> None:
        """Schedule the session's head-of-line gap timeout, if it has one (and it moved)."""
        due = session.sequencer.gap_deadline()
        if due is not None and due != session.gap_armed:
            session.gap_armed = due
            self.deadlines.push(due, ("gap", session.session_id))

    def _deliver(self, session: Session, messages: list[Message]) -> list[Action]:
        actions: list[Action] = []
        for message in messages:
            actions += self._to_session(session, message)
        self._arm_gap(session)
        if session.closing and session.sequencer.pending() == 0 and session.conn_id is not None:
            actions.append(Send(session.conn_id, SessionCloseAck(session_id=session.session_id)))
            actions.append(Close(session.conn_id, CLOSE_NORMAL, "session closed"))
            self._drop_session(session)
        return actions

    def _to_session(self, session: Session, message: Message) -> list[Action]:
        """Send now, or hold for a disconnected session within `session_hold_bytes`: a result
        over the budget is held without its audio; when even that does not fit the session
        has lost too much to resume faithfully and is ended (its resume gets INVALID_SESSION
        and the client opens a new session)."""
        if session.conn_id is not None:
            return [Send(session.conn_id, message)]
        size = message_bytes(message)
        if session.outbox_bytes + size > self.s.session_hold_bytes:
            message = without_audio(message, "hold_budget")
            size = message_bytes(message)
        if session.outbox_bytes + size > self.s.session_hold_bytes:
            log.warning("session=%s held results over budget; session ended", session.session_id)
            self._count("sessions_over_hold_budget")
            return self._drop_session(session)
        session.outbox.append(message)
        session.outbox_bytes += size
        return []

    def _send_to_session(self, session_id: str, message: Message) -> list[Action]:
        session = self.sessions.get(session_id)
        if session is None:
            return []
        return self._to_session(session, message)

    if TYPE_CHECKING:  # implemented by the mixins that SchedulerCore combines

        def _dispatch(self, job: Job, now: float, *, retry: bool = False) -> list[Action]: ...
        def _dispatch_queue(self, now: float) -> list[Action]: ...
        def _drop_session(self, session: Session) -> list[Action]: ...
        def _fail(self, job: Job, code: str, text: str, now: float) -> list[Action]: ...
        def _job_ack(self, node: NodeRecord, message: JobAck, now: float) -> list[Action]: ...
        def _job_result(self, node: NodeRecord, message: JobResult, now: float) -> list[Action]: ...
        def _leave_room(self, session: Session) -> list[Action]: ...
        def _node_gone(self, node: NodeRecord, reason: str, now: float) -> list[Action]: ...
        def _retry(self, job: Job, code: str, now: float) -> list[Action]: ...
        def _room_message(self, session: Session, m: Message, now: float) -> list[Action]: ...
