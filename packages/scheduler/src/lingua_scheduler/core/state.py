"""State shared by every part of the scheduler core, and the helpers they use."""

from __future__ import annotations

import logging
import random
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from lingua_protocol import (
    SUPPORTED_PROTOCOL_MAJORS,
    FeatureFlags,
    JobAck,
    JobResult,
    Message,
    PipelineConfig,
    SessionCloseAck,
)

from ..settings import SchedulerSettings
from .actions import Action, Close, Send
from .credentials import CredentialStore
from .jobs import Job
from .ordering import ResultSequencer
from .pairing import PairingService
from .registry import NodeRecord, NodeRegistry, Thresholds
from .rooms import RoomManager
from .selection import CapableIndex
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


@dataclass(slots=True)
class Session:
    session_id: str
    resume_token: str
    conn_id: str | None
    src_lang: str
    tgt_lang: str
    dialect: str | None
    features: FeatureFlags | None
    pipeline: PipelineConfig
    binary_audio: bool
    sequencer: ResultSequencer
    created_at: float
    last_activity: float
    paired_node_id: str | None = None
    sticky_node_id: str | None = None
    disconnected_at: float | None = None
    closing: bool = False
    outbox: list[Message] = field(default_factory=list)
    tokens: float = 0.0
    tokens_at: float = 0.0
    display_name: str | None = None


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
        credentials: CredentialStore | None = None,
    ) -> None:
        self.s = settings or SchedulerSettings()
        self.rng = rng or random.Random(self.s.seed)
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
        self.sessions: dict[str, Session] = {}
        self.session_by_conn: dict[str, str] = {}
        self.by_token: dict[str, str] = {}
        self.jobs: dict[str, Job] = {}
        self.queue: list[str] = []
        self.counters: dict[str, int] = {}
        self._job_seq = 0
        # Job ids are unique across scheduler restarts without a random draw per job: a late
        # result from before a restart can never match a new job.
        self._job_prefix = secrets.token_hex(4)
        self._last_slow_tick = -1e18

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

    def _deliver(self, session: Session, messages: list[Message]) -> list[Action]:
        actions: list[Action] = []
        for message in messages:
            if session.conn_id is not None:
                actions.append(Send(session.conn_id, message))
            else:
                session.outbox.append(message)
        if session.closing and session.sequencer.pending() == 0 and session.conn_id is not None:
            actions.append(Send(session.conn_id, SessionCloseAck(session_id=session.session_id)))
            actions.append(Close(session.conn_id, CLOSE_NORMAL, "session closed"))
            self._drop_session(session)
        return actions

    def _send_to_session(self, session_id: str, message: Message) -> list[Action]:
        session = self.sessions.get(session_id)
        if session is None:
            return []
        if session.conn_id is None:
            session.outbox.append(message)
            return []
        return [Send(session.conn_id, message)]

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
