"""The scheduler core: events in (a parsed message from a connection, a lost connection, the
clock moving on), actions out (send this to that connection, close that one).

No sockets and no sleeping: the caller passes `now` (monotonic seconds) into every call, so
failover, ordering and expiry are tested in microseconds with a fake clock.
"""

from __future__ import annotations

import hmac
import logging
import random
import secrets
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from lingua_protocol import (
    PROTOCOL_VERSION,
    SUPPORTED_PROTOCOL_MAJORS,
    AsrPartial,
    ClientHeartbeat,
    ErrorCode,
    FeatureFlags,
    JobAck,
    JobCancel,
    JobResult,
    Message,
    MissingResult,
    NodeControl,
    NodeError,
    NodeHeartbeat,
    NodeRegister,
    NodeRegisterAck,
    PairingCode,
    PairingCodeRequest,
    PipelineConfig,
    RoomCreate,
    RoomCreateAck,
    RoomExpired,
    RoomJoin,
    RoomLeave,
    RoomMember,
    RoomMembers,
    ServerHeartbeat,
    SessionClose,
    SessionCloseAck,
    SessionInit,
    SessionInitAck,
    TranslationResult,
    Utterance,
    error_message,
)
from lingua_protocol.audio import message_audio_duration_s

from ..settings import SchedulerSettings
from .actions import Action, Close, Send
from .jobs import Job
from .ordering import Acceptance, ResultSequencer
from .pairing import PairingService
from .registry import NodeRecord, NodeRegistry, Thresholds
from .rooms import Member, Room, RoomError, RoomManager
from .selection import JobNeeds, any_capable, select_node

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


class SchedulerCore:
    """All scheduler state and rules. Not thread-safe: one event loop drives it."""

    def __init__(
        self,
        settings: SchedulerSettings | None = None,
        *,
        rng: random.Random | None = None,
        observer: Observer | None = None,
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
        self.pairing = PairingService(self.s.pairing_code_ttl_s, self.s.pairing_failures_per_min)
        self.rooms = RoomManager(self.s.room_max_members, self.s.room_idle_timeout_s)
        self.sessions: dict[str, Session] = {}
        self.session_by_conn: dict[str, str] = {}
        self.by_token: dict[str, str] = {}
        self.jobs: dict[str, Job] = {}
        self.queue: list[str] = []
        self.counters: dict[str, int] = {}
        self._job_seq = 0
        self._last_slow_tick = -1e18

    # ------------------------------------------------------------------ helpers

    def _count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def _job_log(self, job: Job, state: str, now: float, **extra: Any) -> None:
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

    # ------------------------------------------------------------------ node side

    def node_message(self, conn_id: str, message: Message, now: float) -> list[Action]:
        if isinstance(message, NodeRegister):
            return self._node_register(conn_id, message, now)
        node = self.registry.for_conn(conn_id)
        if node is None:
            return [
                Send(
                    conn_id,
                    error_message(
                        ErrorCode.INVALID_MESSAGE, "send node_register first", field="type"
                    ),
                )
            ]
        if isinstance(message, NodeHeartbeat):
            return self._node_heartbeat(node, message, now)
        if isinstance(message, JobAck):
            return self._job_ack(node, message, now)
        if isinstance(message, JobResult):
            return self._job_result(node, message, now)
        if isinstance(message, AsrPartial):
            job = self.jobs.get(message.job_id or "")
            if job is not None and job.node_id == node.node_id and job.primary:
                return self._send_to_session(job.session_id, message)
            return []
        if isinstance(message, NodeError):
            log.warning(
                "node=%s node_error code=%s message=%s", node.node_id, message.code, message.message
            )
            self._count("node_errors")
            return []
        if isinstance(message, PairingCodeRequest):
            code = self.pairing.issue(node.node_id, now)
            return [
                Send(
                    conn_id,
                    PairingCode(
                        code=code, node_id=node.node_id, expires_in_s=self.s.pairing_code_ttl_s
                    ),
                )
            ]
        return []

    def _node_register(self, conn_id: str, message: NodeRegister, now: float) -> list[Action]:
        if self.s.node_token and not hmac.compare_digest(
            (message.auth_token or "").encode(), self.s.node_token.encode()
        ):
            self._count("nodes_unauthorized")
            return [
                Send(
                    conn_id,
                    error_message(
                        ErrorCode.UNAUTHORIZED, "wrong or missing node token", field="auth_token"
                    ),
                ),
                Close(conn_id, CLOSE_POLICY, "unauthorized"),
            ]
        if not _version_ok(message.protocol_version):
            return [
                Send(
                    conn_id,
                    error_message(
                        ErrorCode.UNSUPPORTED_PROTOCOL_VERSION,
                        f"protocol {message.protocol_version} not supported; "
                        f"this scheduler speaks {PROTOCOL_VERSION}",
                        field="protocol_version",
                    ),
                ),
                Close(conn_id, CLOSE_POLICY, "unsupported protocol version"),
            ]
        schema = message.capability_schema_version
        if schema is not None and schema.split(".")[0] not in ("1", "2"):
            return [
                Send(
                    conn_id,
                    error_message(
                        ErrorCode.INVALID_CAPABILITY_SCHEMA,
                        f"capability schema {schema} not supported",
                        field="capability_schema_version",
                    ),
                )
            ]
        current = self.registry.for_conn(conn_id)
        node_id = message.node_id or (
            current.node_id if current else f"node-{secrets.token_hex(4)}"
        )
        if current is not None and current.node_id != node_id:
            return [
                Send(
                    conn_id,
                    error_message(
                        ErrorCode.NODE_ID_CONFLICT,
                        "a connection registers one node id",
                        field="node_id",
                    ),
                )
            ]
        actions: list[Action] = []
        old = self.registry.nodes.get(node_id)
        if old is not None and old.conn_id is not None and old.conn_id != conn_id:
            # A restarted node re-registers before its old connection timed out: the new
            # connection takes over and the old one's jobs move on.
            actions.append(Close(old.conn_id, CLOSE_POLICY, "replaced by a new connection"))
            actions += self._node_gone(old, "replaced by a new connection", now)
        node = self.registry.register(conn_id, node_id, message, now, bool(message.binary_audio))
        if current is not None:
            node.in_flight = current.in_flight
        log.info("node=%s registered status=%s reason=%s", node_id, node.status, node.reason)
        actions.append(
            Send(
                conn_id,
                NodeRegisterAck(
                    node_id=node_id,
                    message="registered",
                    status=node.status,  # type: ignore[arg-type]
                    status_reason=node.reason,
                    protocol_version=PROTOCOL_VERSION,
                    binary_audio=bool(message.binary_audio),
                    heartbeat_interval_s=self.s.heartbeat_interval_s,
                ),
            )
        )
        actions += self._dispatch_queue(now)
        return actions

    def _node_heartbeat(self, node: NodeRecord, message: NodeHeartbeat, now: float) -> list[Action]:
        before = node.status
        self.registry.heartbeat(node, message, now)
        if node.status != before:
            log.info("node=%s status %s -> %s (%s)", node.node_id, before, node.status, node.reason)
        return self._dispatch_queue(now)

    def control_node(self, node_id: str, command: str, now: float) -> list[Action]:
        """Operator action (drain/resume/shutdown/reload_config) on a node."""
        node = self.registry.nodes.get(node_id)
        if node is None or node.conn_id is None:
            return []
        if command == "drain":
            node.draining = True
        elif command == "resume":
            node.draining = False
        self.registry.refresh(node)
        return [Send(node.conn_id, NodeControl(command=command, reason="operator"))]  # type: ignore[arg-type]

    def node_disconnected(self, conn_id: str, now: float) -> list[Action]:
        node = self.registry.for_conn(conn_id)
        if node is None:
            return []
        return self._node_gone(node, "disconnected", now)

    def _node_gone(self, node: NodeRecord, reason: str, now: float) -> list[Action]:
        log.info(
            "node=%s offline (%s), reassigning %d job(s)", node.node_id, reason, len(node.in_flight)
        )
        self.registry.mark_offline(node, reason, now)
        actions: list[Action] = []
        for job_id in sorted(node.in_flight):
            job = self.jobs.get(job_id)
            if job is not None:
                actions += self._retry(job, ErrorCode.NODE_UNAVAILABLE.value, now)
        node.in_flight.clear()
        return actions

    # ------------------------------------------------------------------ jobs

    def _job_ack(self, node: NodeRecord, message: JobAck, now: float) -> list[Action]:
        job = self.jobs.get(message.job_id)
        if job is None or job.node_id != node.node_id or job.state != "assigned":
            return []
        if message.attempt_id is not None and message.attempt_id != job.attempt_id:
            return []
        job.state = "running"
        job.deadline = now + self.s.job_timeout_s + self.s.job_timeout_per_audio_s * job.audio_s
        self._job_log(job, "running", now)
        return []

    def _job_result(self, node: NodeRecord, message: JobResult, now: float) -> list[Action]:
        job = self.jobs.get(message.job_id)
        stale = (
            job is None
            or job.node_id != node.node_id
            or (message.attempt_id is not None and message.attempt_id != job.attempt_id)
        )
        if stale or job is None:
            self._count("results_dropped_stale")
            log.info("job=%s stale result from node=%s dropped", message.job_id, node.node_id)
            return []
        node.in_flight.discard(job.job_id)
        if message.success:
            node.jobs_done += 1
            return self._succeed(job, message, now) + self._dispatch_queue(now)
        node.jobs_failed += 1
        code = message.error.code if message.error else ErrorCode.INTERNAL_ERROR.value
        text = message.error.message if message.error else "job failed"
        job.last_error = code
        retry = code in ErrorCode.__members__ and ErrorCode(code).retryable
        if retry:
            return self._retry(job, code, now) + self._dispatch_queue(now)
        return self._fail(job, code, text, now) + self._dispatch_queue(now)

    def _succeed(self, job: Job, r: JobResult, now: float) -> list[Action]:
        self.jobs.pop(job.job_id, None)
        self.observer.job_outcome("success")
        self._count("jobs_succeeded")
        self._job_log(job, "succeeded", now)
        session = self.sessions.get(job.session_id)
        if session is not None and self.s.sticky_nodes and job.node_id:
            session.sticky_node_id = job.node_id
        base = {
            "utterance_index": job.utterance_index,
            "job_id": job.job_id,
            "text_asr": r.text_asr,
            "text_translated": r.text_translated,
            "tts_audio": r.tts_audio,
            "tts_format": r.tts_format,
            "tts_sample_rate": r.tts_sample_rate,
            "extra": r.extra,
            "processing_time_ms": r.processing_time_ms,
            "service_timings": r.service_timings,
            "node_id": job.node_id,
            "src_lang": job.src_lang,
            "tgt_lang": job.tgt_lang,
        }
        base = {k: v for k, v in base.items() if v is not None}
        actions: list[Action] = []
        room_extra: dict[str, Any] = {}
        if job.room_code is not None:
            room_extra = {"room_code": job.room_code, "speaker_session_id": job.session_id}
            if job.speaker_name:
                room_extra["speaker_display_name"] = job.speaker_name
        for listener in job.listeners:
            actions += self._send_to_session(
                listener,
                TranslationResult.model_validate({**base, **room_extra, "session_id": listener}),
            )
        if job.primary and session is not None:
            result = TranslationResult.model_validate(
                {**base, **room_extra, "session_id": job.session_id}
            )
            actions += self._deliver(
                session, session.sequencer.finish(job.utterance_index, result, now)
            )
        return actions

    def _fail(self, job: Job, code: str, text: str, now: float) -> list[Action]:
        self.jobs.pop(job.job_id, None)
        if job.job_id in self.queue:
            self.queue.remove(job.job_id)
        self.observer.job_outcome("failed")
        self._count("jobs_failed")
        self._job_log(job, "failed", now, code=code)
        actions: list[Action] = []
        for listener in job.listeners:
            actions += self._send_to_session(
                listener,
                error_message(
                    ErrorCode(code) if code in ErrorCode.__members__ else ErrorCode.INTERNAL_ERROR,
                    text,
                    session_id=listener,
                    utterance_index=job.utterance_index,
                    speaker_session_id=job.session_id,
                ),
            )
        session = self.sessions.get(job.session_id)
        if job.primary and session is not None:
            err = error_message(
                ErrorCode(code) if code in ErrorCode.__members__ else ErrorCode.INTERNAL_ERROR,
                text,
                session_id=job.session_id,
                utterance_index=job.utterance_index,
                src_lang=job.src_lang,
                tgt_lang=job.tgt_lang,
            )
            actions += self._deliver(
                session, session.sequencer.finish(job.utterance_index, err, now)
            )
        return actions

    def _retry(self, job: Job, code: str, now: float) -> list[Action]:
        actions: list[Action] = []
        if job.node_id is not None:
            job.tried.add(job.node_id)
            node = self.registry.nodes.get(job.node_id)
            if node is not None:
                node.in_flight.discard(job.job_id)
        job.last_error = code
        self._job_log(job, "retrying", now, code=code)
        self._count("jobs_retried")
        if job.attempt >= self.s.max_attempts:
            return actions + self._fail(
                job, code, f"gave up after {job.attempt} attempt(s): {code}", now
            )
        return actions + self._dispatch(job, now, retry=True)

    def _dispatch(self, job: Job, now: float, *, retry: bool = False) -> list[Action]:
        nodes = self.registry.connected()
        session = self.sessions.get(job.session_id)
        sticky = session.sticky_node_id if (session and self.s.sticky_nodes) else None
        exclude = frozenset(job.tried)
        node = select_node(nodes, job.needs, self.rng, sticky, exclude)
        if (
            node is None
            and retry
            and not any(n.node_id not in exclude for n in nodes if any_capable([n], job.needs))
        ):
            # Every capable node has been tried: allow them again rather than give up early.
            node = select_node(nodes, job.needs, self.rng, None, frozenset({job.node_id or ""}))
        if node is not None:
            return self._assign(job, node, now)
        if any_capable(nodes, job.needs) and len(self.queue) < self.s.max_queue:
            if job.job_id not in self.queue:
                self.queue.append(job.job_id)
            job.state = "queued"
            job.node_id = None
            job.queued_at = job.queued_at or now
            job.deadline = job.queued_at + self.s.queue_timeout_s
            self._job_log(job, "queued", now)
            return []
        if retry:
            return self._fail(
                job, job.last_error, f"no other node can take the job after {job.last_error}", now
            )
        pair = f"{job.src_lang}->{job.tgt_lang}"
        return self._fail(
            job,
            ErrorCode.NO_AVAILABLE_NODE.value,
            f"no available node for {pair}{' with TTS' if job.needs.use_tts else ''} "
            f"(utterance {job.utterance_index})",
            now,
        )

    def _assign(self, job: Job, node: NodeRecord, now: float) -> list[Action]:
        if job.job_id in self.queue:
            self.queue.remove(job.job_id)
        job.next_attempt()
        job.node_id = node.node_id
        job.state = "assigned"
        job.assigned_at = now
        job.deadline = now + self.s.ack_timeout_s
        node.in_flight.add(job.job_id)
        self.observer.dispatch_latency(now - job.created_at)
        self._job_log(job, "assigned", now)
        timeout_s = self.s.job_timeout_s + self.s.job_timeout_per_audio_s * job.audio_s
        assert node.conn_id is not None
        return [Send(node.conn_id, job.assign_message(int(timeout_s * 1000)))]

    def _dispatch_queue(self, now: float) -> list[Action]:
        actions: list[Action] = []
        for job_id in list(self.queue):
            job = self.jobs.get(job_id)
            if job is None:
                self.queue.remove(job_id)
                continue
            node = select_node(
                self.registry.connected(), job.needs, self.rng, None, frozenset(job.tried)
            )
            if node is not None:
                actions += self._assign(job, node, now)
        return actions

    # ------------------------------------------------------------------ client side

    def client_message(self, conn_id: str, message: Message, now: float) -> list[Action]:
        if isinstance(message, SessionInit):
            return self._session_init(conn_id, message, now)
        session_id = self.session_by_conn.get(conn_id)
        session = self.sessions.get(session_id) if session_id else None
        index = getattr(message, "utterance_index", None)
        if session is None:
            return [
                Send(
                    conn_id,
                    error_message(
                        ErrorCode.INVALID_SESSION, "send session_init first", utterance_index=index
                    ),
                )
            ]
        claimed = getattr(message, "session_id", None)
        if claimed is not None and claimed != session.session_id:
            return [
                Send(
                    conn_id,
                    error_message(
                        ErrorCode.INVALID_SESSION,
                        "session_id does not match this connection",
                        field="session_id",
                        utterance_index=index,
                    ),
                )
            ]
        session.last_activity = now
        if isinstance(message, Utterance):
            return self._utterance(session, message, now)
        if isinstance(message, ClientHeartbeat):
            return [
                Send(
                    conn_id,
                    ServerHeartbeat(session_id=session.session_id, timestamp=message.timestamp),
                )
            ]
        if isinstance(message, SessionClose):
            session.closing = True
            return self._deliver(session, [])
        if isinstance(message, RoomCreate | RoomJoin | RoomLeave):
            return self._room_message(session, message, now)
        return [
            Send(
                conn_id,
                error_message(
                    ErrorCode.UNSUPPORTED_FEATURE,
                    f"{message.type} is not supported by this scheduler",
                    field="type",
                    utterance_index=index,
                ),
            )
        ]

    def _session_init(self, conn_id: str, m: SessionInit, now: float) -> list[Action]:
        if not _version_ok(m.protocol_version):
            return [
                Send(
                    conn_id,
                    error_message(
                        ErrorCode.UNSUPPORTED_PROTOCOL_VERSION,
                        f"protocol {m.protocol_version} not supported; "
                        f"this scheduler speaks {PROTOCOL_VERSION}",
                        field="protocol_version",
                    ),
                ),
                Close(conn_id, CLOSE_POLICY, "unsupported protocol version"),
            ]
        if conn_id in self.session_by_conn:
            return [
                Send(
                    conn_id,
                    error_message(
                        ErrorCode.INVALID_SESSION, "this connection already has a session"
                    ),
                )
            ]
        if m.resume_token:
            sid = self.by_token.get(m.resume_token)
            session = self.sessions.get(sid) if sid else None
            if session is not None and not session.closing:
                return self._resume(conn_id, session, m.last_received_index, now)
            return [
                Send(
                    conn_id,
                    error_message(
                        ErrorCode.INVALID_SESSION,
                        "resume token unknown or expired; start a new session",
                        field="resume_token",
                    ),
                )
            ]
        paired = None
        if m.pairing_code:
            if self.pairing.rate_limited(conn_id, now):
                return [
                    Send(
                        conn_id,
                        error_message(
                            ErrorCode.RATE_LIMITED,
                            "too many wrong pairing codes; wait a minute",
                            field="pairing_code",
                        ),
                    )
                ]
            paired = self.pairing.redeem(m.pairing_code, conn_id, now)
            if paired is None:
                return [
                    Send(
                        conn_id,
                        error_message(
                            ErrorCode.INVALID_PAIRING_CODE,
                            "Pairing code not found or expired",
                            field="pairing_code",
                        ),
                    )
                ]
        session = Session(
            session_id=f"sess-{secrets.token_urlsafe(12)}",
            resume_token=secrets.token_urlsafe(24),
            conn_id=conn_id,
            src_lang=m.src_lang,
            tgt_lang=m.tgt_lang,
            dialect=m.dialect,
            features=m.features,
            pipeline=m.pipeline or PipelineConfig(),
            binary_audio=bool(m.binary_audio),
            sequencer=ResultSequencer(self.s.result_gap_timeout_s),
            created_at=now,
            last_activity=now,
            paired_node_id=paired,
            tokens=float(self.s.utterance_burst),
            tokens_at=now,
        )
        self.sessions[session.session_id] = session
        self.session_by_conn[conn_id] = session.session_id
        self.by_token[session.resume_token] = session.session_id
        self._count("sessions_created")
        log.info(
            "session=%s created %s->%s paired=%s",
            session.session_id,
            m.src_lang,
            m.tgt_lang,
            paired,
        )
        return [
            Send(
                conn_id,
                SessionInitAck(
                    session_id=session.session_id,
                    assigned_node_id=paired,
                    message="session created",
                    protocol_version=PROTOCOL_VERSION,
                    resume_token=session.resume_token,
                    binary_audio=bool(m.binary_audio),
                ),
            )
        ]

    def _resume(
        self, conn_id: str, session: Session, last_received: int | None, now: float
    ) -> list[Action]:
        actions: list[Action] = []
        if session.conn_id is not None and session.conn_id != conn_id:
            self.session_by_conn.pop(session.conn_id, None)
            actions.append(Close(session.conn_id, CLOSE_POLICY, "session resumed elsewhere"))
        session.conn_id = conn_id
        session.disconnected_at = None
        session.last_activity = now
        self.session_by_conn[conn_id] = session.session_id
        self._count("sessions_resumed")
        log.info(
            "session=%s resumed, %d buffered message(s)", session.session_id, len(session.outbox)
        )
        seq = session.sequencer
        last = None if seq.next_index is None else seq.next_index - 1
        actions.append(
            Send(
                conn_id,
                SessionInitAck(
                    session_id=session.session_id,
                    assigned_node_id=session.paired_node_id,
                    message="session resumed",
                    protocol_version=PROTOCOL_VERSION,
                    resume_token=session.resume_token,
                    binary_audio=session.binary_audio,
                    resumed=True,
                    last_delivered_index=last,
                ),
            )
        )
        # Messages sent on the old connection may have been lost with it: replay those the
        # client says it lacks, then what was produced while it was away.
        outbox, session.outbox = session.outbox, []
        queued = {getattr(m, "utterance_index", None) for m in outbox}
        floor = -1 if last_received is None else last_received
        for index, message in seq.delivered.items():
            if index > floor and index not in queued:
                actions.append(Send(conn_id, message))
        actions += [Send(conn_id, msg) for msg in outbox]
        return actions

    def _take_token(self, session: Session, now: float) -> bool:
        rate, burst = self.s.utterances_per_s, float(self.s.utterance_burst)
        session.tokens = min(burst, session.tokens + (now - session.tokens_at) * rate)
        session.tokens_at = now
        if session.tokens < 1.0:
            return False
        session.tokens -= 1.0
        return True

    def _utterance(self, session: Session, m: Utterance, now: float) -> list[Action]:
        conn = session.conn_id
        assert conn is not None
        index = m.utterance_index
        if session.closing:
            return [
                Send(
                    conn,
                    error_message(
                        ErrorCode.SESSION_CLOSED, "session is closing", utterance_index=index
                    ),
                )
            ]
        state = session.sequencer.accept(index) if self._peek_ok(session, index) else None
        if state is None:
            return [
                Send(
                    conn,
                    error_message(
                        ErrorCode.RATE_LIMITED,
                        "too many utterances; slow down",
                        utterance_index=index,
                    ),
                )
            ]
        if state is Acceptance.IN_PROGRESS:
            return []  # a resend of an utterance already being worked on: its result will come
        if state is Acceptance.DELIVERED:
            old = session.sequencer.replay(index)
            if old is not None:
                return [Send(conn, old)]
            return [
                Send(
                    conn,
                    error_message(
                        ErrorCode.INVALID_MESSAGE,
                        f"utterance {index} was already answered",
                        field="utterance_index",
                        utterance_index=index,
                    ),
                )
            ]
        self._count("utterances_accepted")
        src = m.src_lang or session.src_lang
        tgt = m.tgt_lang or session.tgt_lang
        pipeline = m.pipeline or session.pipeline
        features = m.features or session.features
        audio = m.audio
        duration = (
            message_audio_duration_s(audio.to_bytes(), m.audio_format, m.sample_rate)
            if m.audio_format == "wav"
            else (len(audio) / (2 * m.sample_rate) if m.audio_format == "pcm16" else 10.0)
        )
        room = self.rooms.room_of(session.session_id)
        if room is not None:
            room.last_activity = now
            langs = room.languages_for(session.session_id, tgt)
            primary_lang = tgt if tgt in langs else langs[0]
        else:
            langs, primary_lang = [tgt], tgt
        actions: list[Action] = []
        for lang in langs:
            self._job_seq += 1
            use_nmt = pipeline.use_nmt and lang != src
            job = Job(
                job_id=f"job-{self._job_seq}-{secrets.token_hex(3)}",
                session_id=session.session_id,
                utterance_index=index,
                src_lang=src,
                tgt_lang=lang,
                pipeline=PipelineConfig(
                    use_asr=pipeline.use_asr, use_nmt=use_nmt, use_tts=pipeline.use_tts
                ),
                features=features,
                dialect=m.dialect or session.dialect,
                audio=audio,
                audio_format=m.audio_format,
                sample_rate=m.sample_rate,
                audio_s=duration or 10.0,
                needs=JobNeeds(
                    src,
                    lang,
                    pipeline.use_tts,
                    use_nmt,
                    frozenset(features.requested()) if features else frozenset(),
                    session.paired_node_id,
                ),
                created_at=now,
                primary=(lang == primary_lang),
            )
            if room is not None:
                job.room_code = room.code
                job.listeners = room.members_with(lang, exclude=session.session_id)
                job.speaker_name = room.members[session.session_id].display_name
            self.jobs[job.job_id] = job
            self._job_log(job, "created", now, src=src, tgt=lang)
            actions += self._dispatch(job, now)
        return actions

    def _peek_ok(self, session: Session, index: int) -> bool:
        """Rate-limit only new utterances, never resends of known ones."""
        seq = session.sequencer
        if index in seq.accepted or (seq.next_index is not None and index < seq.next_index):
            return True
        return self._take_token(session, now=session.last_activity)

    def client_disconnected(self, conn_id: str, now: float) -> list[Action]:
        self.pairing.forget_conn(conn_id)
        session_id = self.session_by_conn.pop(conn_id, None)
        session = self.sessions.get(session_id) if session_id else None
        if session is None or session.conn_id != conn_id:
            return []
        session.conn_id = None
        session.disconnected_at = now
        if session.closing:
            return self._drop_session(session)
        return []

    def _drop_session(self, session: Session) -> list[Action]:
        self.sessions.pop(session.session_id, None)
        self.by_token.pop(session.resume_token, None)
        if session.conn_id is not None:
            self.session_by_conn.pop(session.conn_id, None)
        for job in [j for j in self.jobs.values() if j.session_id == session.session_id]:
            job.primary = False
            if not job.listeners:
                self._abandon(job)
        return self._leave_room(session)

    def _abandon(self, job: Job) -> None:
        self.jobs.pop(job.job_id, None)
        if job.job_id in self.queue:
            self.queue.remove(job.job_id)
        node = self.registry.nodes.get(job.node_id or "")
        if node is not None:
            node.in_flight.discard(job.job_id)

    # ------------------------------------------------------------------ rooms

    def _room_message(self, session: Session, m: Message, now: float) -> list[Action]:
        conn = session.conn_id
        assert conn is not None
        try:
            if isinstance(m, RoomCreate):
                member = Member(
                    session.session_id, m.display_name, m.preferred_lang or session.tgt_lang
                )
                room = self.rooms.create(member, now)
                ack = RoomCreateAck(room_code=room.code, session_id=session.session_id)
                return [Send(conn, ack), *self._members(room)]
            if isinstance(m, RoomJoin):
                member = Member(
                    session.session_id, m.display_name, m.preferred_lang or session.tgt_lang
                )
                room = self.rooms.join(m.room_code, member, now)
                return self._members(room)
            return self._leave_room(session)
        except RoomError as exc:
            return [Send(conn, error_message(ErrorCode(exc.code), field="room_code"))]

    def _members(self, room: Room) -> list[Action]:
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
            actions += self._send_to_session(sid, RoomMembers(room_code=room.code, members=members))
        return actions

    def _leave_room(self, session: Session) -> list[Action]:
        room = self.rooms.leave(session.session_id)
        if room is None or not room.members:
            return []
        return self._members(room)

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
