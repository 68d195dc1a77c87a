"""Node connections: register, heartbeats, operator control, disconnects."""

from __future__ import annotations

import hmac
import logging

from lingua_protocol import (
    PROTOCOL_VERSION,
    AsrPartial,
    ErrorCode,
    JobAck,
    JobResult,
    Message,
    NodeCommand,
    NodeControl,
    NodeError,
    NodeHeartbeat,
    NodeRegister,
    NodeRegisterAck,
    PairingCode,
    PairingCodeRequest,
    ResourceUsage,
)

from .actions import Action, Send, SetAudioTransport, refuse_and_close
from .capabilities import derive
from .credentials import CredentialCheck, Verdict
from .delivery import Delivery
from .errors import CoreError
from .job_flow import JobFlow
from .limit_log import LimitLog
from .registry import NodeRecord
from .stream_side import StreamSide
from .tables import CoreTables
from .versions import version_ok, version_refusal

log = logging.getLogger("lingua.scheduler")


class NodeSide:
    """Handles every message from a node connection; receives the tables it works on."""

    def __init__(
        self, tables: CoreTables, flow: JobFlow, delivery: Delivery, streams: StreamSide
    ) -> None:
        self.s = tables.config
        self.random = tables.random
        self.stats = tables.stats
        self.registry = tables.registry
        self.jobs = tables.jobs
        self.pairing = tables.pairing
        self.trust = tables.trust
        self.flow = flow
        self.delivery = delivery
        self.streams = streams

    def node_message(self, conn_id: str, message: Message, now: float) -> list[Action]:
        if isinstance(message, NodeRegister):
            return self._node_register(conn_id, message, now)
        node = self.registry.for_conn(conn_id)
        if node is None:
            raise CoreError(ErrorCode.INVALID_MESSAGE, "send node_register first", field="type")
        if isinstance(message, NodeHeartbeat):
            return self._node_heartbeat(node, message, now)
        if isinstance(message, JobAck):
            return self.flow.job_ack(node, message, now)
        if isinstance(message, JobResult):
            return self.flow.job_result(node, message, now)
        if isinstance(message, AsrPartial):
            return self.streams.partial(node, message, now)
        if isinstance(message, NodeError):
            detail = f"node={node.node_id} code={message.code} message={message.message}"
            self.trust.limits.hit("node_error", detail, now)  # a node may send them at will
            self.stats.count("node_errors")
            return []
        if isinstance(message, PairingCodeRequest):
            if not self.trust.pairing_requests.take(node.node_id, now):
                raise _rate_limited("pairing_code_request")
            digest = self.trust.credentials.digest(node.node_id)
            code = self.pairing.issue(node.node_id, digest, now)
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
            self.stats.count("nodes_unauthorized")
            text = "wrong or missing node token"
            return refuse_and_close(
                conn_id, ErrorCode.UNAUTHORIZED, text, "auth_token", "unauthorized"
            )
        if not version_ok(message.protocol_version):
            return version_refusal(conn_id, message.protocol_version)
        schema = message.capability_schema_version
        if schema is not None and schema.split(".")[0] not in ("1", "2"):
            raise CoreError(
                ErrorCode.INVALID_CAPABILITY_SCHEMA,
                f"capability schema {schema} not supported",
                field="capability_schema_version",
            )
        current = self.registry.for_conn(conn_id)
        node_id = message.node_id or (
            current.node_id if current else f"node-{self.random.token_hex(4)}"
        )
        if current is not None and current.node_id != node_id:
            raise CoreError(
                ErrorCode.NODE_ID_CONFLICT, "a connection registers one node id", field="node_id"
            )
        old = self.registry.nodes.get(node_id)
        live_elsewhere = old is not None and old.conn_id is not None and old.conn_id != conn_id
        check: CredentialCheck | None = None
        if current is None:  # a new connection proves it is this node before anything changes
            check = self.trust.credentials.check(node_id, message.node_credential)
            if check.verdict is Verdict.FIRST_USE and not self.trust.new_node_ids.take(
                self.trust.address_of(conn_id), now
            ):
                check = CredentialCheck(node_id, Verdict.FULL)  # this address made enough ids
            if not check.ok:
                self.stats.count("nodes_refused")
                return _credential_refusal(conn_id, check, live_elsewhere, self.trust.limits, now)
        actions: list[Action] = []
        issued = self.trust.credentials.accept(check) if check is not None else None
        node = self.registry.register(conn_id, node_id, message, now, bool(message.binary_audio))
        if old is not None and live_elsewhere and old.conn_id is not None:
            # The node's credential proved it: a restarted node whose old connection died
            # silently takes over, and the old connection's jobs move on (to it, if it fits).
            taken = "another connection with this node's credential took over this node id"
            actions += refuse_and_close(
                old.conn_id,
                ErrorCode.NODE_ID_CONFLICT,
                taken,
                "node_id",
                "replaced by a new connection",
            )
            actions += self.node_gone(old, "replaced by a new connection", now)
        if current is not None:
            node.in_flight = current.in_flight
            node.stream_jobs = current.stream_jobs
        log.info("node=%s registered status=%s reason=%s", node_id, node.status, node.reason)
        actions.append(SetAudioTransport(conn_id, node.binary_audio))
        actions.append(
            Send(
                conn_id,
                NodeRegisterAck(
                    node_id=node_id,
                    message="registered",
                    status=node.status,
                    status_reason=node.reason,
                    protocol_version=PROTOCOL_VERSION,
                    binary_audio=bool(message.binary_audio),
                    heartbeat_interval_s=self.s.heartbeat_interval_s,
                    node_credential=issued,
                ),
            )
        )
        actions += self.flow.dispatch_queue(now)
        return actions

    def _node_heartbeat(self, node: NodeRecord, message: NodeHeartbeat, now: float) -> list[Action]:
        """O(1) unless the capabilities changed: a node cannot make the scheduler redo its
        capability work by heartbeating (heartbeats are also rate limited per node)."""
        if not self.trust.heartbeats.take(node.node_id, now):
            raise _rate_limited("node_heartbeat")
        before = node.status
        changed = self.registry.heartbeat(node, message, now)
        if node.status == before and not changed:
            return []
        if node.status != before:
            log.info("node=%s status %s -> %s (%s)", node.node_id, before, node.status, node.reason)
        return self.flow.dispatch_queue(now)

    def remote_node(
        self,
        conn_id: str,
        message: NodeRegister,
        usage: ResourceUsage | None,
        draining: bool,
        now: float,
    ) -> list[Action]:
        """A node another instance of the cluster holds, as that instance published it.
        `conn_id` names the link to it (the shell forwards what the core sends there). No
        credential check: the holding instance made it. A node id held here already (its own
        connection, or another instance's) is left alone. Called again on every refresh of the
        view: it counts as a heartbeat, and new capabilities replace the old."""
        node = self.registry.for_conn(conn_id)
        if node is None:
            held = self.registry.nodes.get(message.node_id or "")
            if held is not None and held.conn_id is not None:
                return []
            node = self.registry.register(conn_id, message.node_id or "", message, now, False)
            node.usage = usage
            node.draining = draining
            self.registry.refresh(node)
            log.info("node=%s seen on another instance (%s)", node.node_id, conn_id)
            return self.flow.dispatch_queue(now)
        node.last_heartbeat = now
        node.usage = usage
        before = node.status
        if message != node.register:
            node.register = message
            node.caps = derive(message)
            node.max_jobs = message.max_concurrent_jobs or self.registry.default_max_jobs
            self.registry.version += 1
        node.draining = draining
        self.registry.refresh(node)
        return self.flow.dispatch_queue(now) if node.status != before else []

    def control_node(self, node_id: str, command: NodeCommand, now: float) -> list[Action]:
        """Operator action (drain/resume/shutdown/reload_config) on a node."""
        node = self.registry.nodes.get(node_id)
        if node is None or node.conn_id is None:
            return []
        if command == "drain":
            node.draining = True
        elif command == "resume":
            node.draining = False
        self.registry.refresh(node)
        return [Send(node.conn_id, NodeControl(command=command, reason="operator"))]

    def node_disconnected(self, conn_id: str, now: float) -> list[Action]:
        node = self.registry.for_conn(conn_id)
        if node is None:
            return []
        return self.node_gone(node, "disconnected", now)

    def node_gone(self, node: NodeRecord, reason: str, now: float) -> list[Action]:
        log.info(
            "node=%s offline (%s), reassigning %d job(s)", node.node_id, reason, len(node.in_flight)
        )
        self.registry.mark_offline(node, reason, now)
        actions: list[Action] = []
        for job_id in sorted(node.in_flight):
            job = self.jobs.get(job_id)
            if job is not None:
                actions += self.flow.retry(job, ErrorCode.NODE_UNAVAILABLE, now)
        node.in_flight.clear()
        node.stream_jobs.clear()
        return actions


def _rate_limited(what: str) -> CoreError:
    return CoreError(ErrorCode.RATE_LIMITED, f"too many {what} messages; slow down", field="type")


def _credential_refusal(
    conn_id: str, check: CredentialCheck, live: bool, limits: LimitLog, now: float
) -> list[Action]:
    """Refuse a registration whose credential does not prove the node id. While the id is
    live elsewhere the refusal is NODE_ID_CONFLICT, and the live node stays."""
    if check.verdict is Verdict.FULL:
        code, text = ErrorCode.RATE_LIMITED, "no more new node ids now; try again later"
    elif live:
        code, text = ErrorCode.NODE_ID_CONFLICT, "another live connection uses this node id"
    else:
        code, text = ErrorCode.UNAUTHORIZED, f"node_credential {check.verdict.value} for this id"
    limits.hit("node register refused", f"node={check.node_id[:64]}: {text}", now)
    field = "node_id" if code is ErrorCode.NODE_ID_CONFLICT else "node_credential"
    return refuse_and_close(conn_id, code, text, field, code.value.lower())
