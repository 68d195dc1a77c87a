"""The node's side of its scheduler connection as plain decisions: no socket, no clock, no thread.

`NodeSession` takes what happened (connected, a parsed scheduler message, a job finished, a
heartbeat is due, the operator pressed Ctrl-C) and returns what to do (`Send`, `StartJob`,
`Close`, `Reload`). `agent.py` is the shell that owns the WebSocket, the worker threads and the
timers and carries the actions out. Every rule of the node's protocol lives here, so it is
tested in milliseconds without Whisper or sockets (`tests/test_node_session.py`):

- the first message is `node_register`; the only acceptable reply is `node_register_ack`
  (an `error` with UNAUTHORIZED or NODE_ID_CONFLICT is fatal, anything else a reconnect);
- a `job_assign` is acked and started when the job book admits it, else refused at once with
  NODE_OVERLOADED (full) or NODE_UNAVAILABLE (draining);
- a cancelled attempt is not started, and its result is discarded if it already ran;
- `drain` refuses new jobs, `resume` takes them again, `shutdown` drains and stops once idle;
- audio goes out as a binary frame only when both sides agreed to it in the register exchange
  (decided here, once, not guessed by the shell);
- a `job_assign` with `stream` opens a stream (at most `max_streams`, else NODE_OVERLOADED);
  its `job_audio` is checked for order (`streaming/streams.py`) and fed to it, its partials
  go out while it is held, and exactly one `job_result` ends it (none once cancelled).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from lingua_protocol import (
    AsrPartial,
    Error,
    ErrorCode,
    JobAck,
    JobAssign,
    JobAudio,
    JobCancel,
    JobError,
    JobResult,
    Message,
    NodeControl,
    NodeError,
    NodeHeartbeat,
    NodeRegister,
    NodeRegisterAck,
    PairingCode,
    PairingCodeRequest,
    ResourceUsage,
)

from ._health import Withdrawal
from ._jobs import JobBook, Key
from ._streaming.streams import Fail, StreamBook

FATAL_CODES = frozenset({ErrorCode.UNAUTHORIZED, ErrorCode.NODE_ID_CONFLICT})
CAPABILITY_FIELDS = NodeHeartbeat.CAPABILITY_FIELDS


class Phase(Enum):
    DISCONNECTED = "disconnected"
    REGISTERING = "registering"
    REGISTERED = "registered"
    STOPPED = "stopped"


class RegisterRefused(Exception):
    """The scheduler did not accept the register. `fatal`: retrying cannot help."""

    def __init__(self, message: str, *, fatal: bool) -> None:
        super().__init__(message)
        self.fatal = fatal


@dataclass(frozen=True, slots=True)
class Send:
    """Write `message`; as a binary frame when `binary` (it carries audio and both agreed)."""

    message: Message
    binary: bool = False


@dataclass(frozen=True, slots=True)
class StartJob:
    """Run this job on a worker; report back with `job_finished`."""

    job: JobAssign


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection and stop the agent: shutdown finished, or (`fatal`) the node must
    not reconnect, since another process holding its credential took its place."""

    reason: str
    fatal: bool = False


@dataclass(frozen=True, slots=True)
class KeepCredential:
    """The scheduler handed this node a credential (it had none): write it to the node's home
    (a file write: off the event loop) so every later register presents it."""

    credential: str


@dataclass(frozen=True, slots=True)
class Reload:
    """Reload models from the store (blocking: run off the loop), then `capabilities_changed`."""


@dataclass(frozen=True, slots=True)
class Beat:
    """Send a heartbeat now (built with `heartbeat()`), so the scheduler sees a new state."""


@dataclass(frozen=True, slots=True)
class StartStream:
    """Open a stream for this job (its audio so far is in `job.audio`); its passes run on
    the workers, its partials come back through `stream_partial`, its result through
    `stream_finished`."""

    job: JobAssign


@dataclass(frozen=True, slots=True)
class FeedStream:
    """Give the stream this chunk (in order; checked here); `chunk.is_final` ends the
    utterance, so its final pass is due."""

    key: Key
    chunk: JobAudio


@dataclass(frozen=True, slots=True)
class EndStream:
    """Forget the stream now (cancelled, failed, or the connection is gone): no pass of it
    starts any more, and what a running pass produces is dropped."""

    key: Key


Action = (
    Send | StartJob | Close | Reload | Beat | KeepCredential | StartStream | FeedStream | EndStream
)


@dataclass
class NodeSession:
    node_id: str
    max_jobs: int
    binary_audio: bool = True
    request_pairing: bool = False
    credential: str | None = None
    """The node's secret, presented in every register (see `identity.credential`)."""
    phase: Phase = Phase.DISCONNECTED
    book: JobBook = field(init=False)
    binary: bool = False
    heartbeat_interval_s: float | None = None
    status: str = "starting"
    status_reason: str | None = None
    last_error: str | None = None
    pairing_code: str | None = None
    shutdown_requested: bool = False
    capabilities_changed: bool = False
    max_streams: int = 0
    """Streams held at once (`max_concurrent_streams`); 0: streaming jobs are refused."""
    streams: StreamBook = field(init=False)

    def __post_init__(self) -> None:
        self.book = JobBook(self.max_jobs)
        self.streams = StreamBook(self.max_streams)

    # --- connection ---------------------------------------------------------------------------

    def connected(self, register: NodeRegister) -> list[Action]:
        self.phase = Phase.REGISTERING
        if self.credential is not None and register.node_credential is None:
            register = register.model_copy(update={"node_credential": self.credential})
        return [Send(register)]

    def registered(self, reply: Message) -> list[Action]:
        """The scheduler's first reply. Raises `RegisterRefused` unless it is an ack."""
        if isinstance(reply, Error):
            fatal = reply.code in FATAL_CODES
            raise RegisterRefused(f"{reply.code}: {reply.message}", fatal=fatal)
        if not isinstance(reply, NodeRegisterAck):
            raise RegisterRefused(f"expected node_register_ack, got {reply.type}", fatal=False)
        self.phase = Phase.REGISTERED
        self.binary = bool(reply.binary_audio and self.binary_audio)
        self.heartbeat_interval_s = reply.heartbeat_interval_s
        self.status = reply.status or "ready"
        self.status_reason = reply.status_reason
        self.last_error = None
        actions: list[Action] = []
        if reply.node_credential and reply.node_credential != self.credential:
            self.credential = reply.node_credential
            actions.append(KeepCredential(reply.node_credential))
        if self.request_pairing:
            actions.append(Send(PairingCodeRequest(node_id=self.node_id)))
        return actions

    def disconnected(self) -> None:
        """The scheduler has already handed this connection's attempts to other nodes."""
        if self.phase is not Phase.STOPPED:
            self.phase = Phase.DISCONNECTED
        self.binary = False
        self.book.drop_all()
        self.streams.drop_all()

    # --- scheduler messages -------------------------------------------------------------------

    def received(self, message: Message) -> list[Action]:
        """A parsed message after registration."""
        if isinstance(message, JobAssign):
            return self._stream(message) if message.stream else self._job(message)
        if isinstance(message, JobAudio):
            return self._audio(message)
        if isinstance(message, JobCancel):
            self.book.cancel(message.job_id, message.attempt_id)
            ended = self.streams.cancel(message.job_id, message.attempt_id)
            return [*(EndStream(key) for key in ended), *self._stop_if_done()]
        if isinstance(message, NodeControl):
            return self._control(message)
        if isinstance(message, PairingCode):
            self.pairing_code = message.code
            return []
        if isinstance(message, Error):
            self.last_error = f"{message.code}: {message.message}"
            if message.code == ErrorCode.NODE_ID_CONFLICT:
                # Another process with this node's credential took over (the same home run
                # twice): reconnecting would take it back, and the two would alternate.
                self.phase = Phase.STOPPED
                return [Close(self.last_error, fatal=True)]
        return []

    def _job(self, job: JobAssign) -> list[Action]:
        refused = self.book.admit(key_of(job))
        if refused is not None:
            return [Send(self.refusal(job, refused))]
        return [Send(self._ack(job)), StartJob(job)]

    def _stream(self, job: JobAssign) -> list[Action]:
        refused = self.streams.admit(job, self.book.draining)
        if refused is not None:
            return [Send(self.refusal(job, refused))]
        return [Send(self._ack(job)), StartStream(job)]

    def _audio(self, chunk: JobAudio) -> list[Action]:
        verdict = self.streams.audio(chunk)
        if verdict is None:
            return []
        if isinstance(verdict, Fail):
            return self.stream_failed(verdict.key, verdict.code, verdict.message)
        return [FeedStream(verdict.key, chunk)]

    def _ack(self, job: JobAssign) -> JobAck:
        return JobAck(
            job_id=job.job_id,
            attempt_id=job.attempt_id,
            node_id=self.node_id,
            session_id=job.session_id,
            utterance_index=job.utterance_index,
        )

    def _control(self, control: NodeControl) -> list[Action]:
        actions: list[Action] = []
        if control.command == "drain":
            self.book.draining = True
        elif control.command == "resume":
            self.book.draining = False
        elif control.command == "shutdown":
            self.book.draining = True
            self.shutdown_requested = True
        elif control.command == "reload_config":
            actions.append(Reload())
        actions.append(Beat())
        actions.extend(self._stop_if_done())
        return actions

    # --- jobs ---------------------------------------------------------------------------------

    def may_start(self, job: JobAssign) -> bool:
        """Asked by the worker just before inference: False once the attempt was cancelled."""
        return self.book.should_start(key_of(job))

    def job_finished(self, job: JobAssign, result: JobResult) -> list[Action]:
        actions: list[Action] = []
        if self.book.finish(key_of(job), result.success) and self.phase is Phase.REGISTERED:
            actions.append(Send(result, binary=self.binary and result.audio_data() is not None))
        actions.extend(self._stop_if_done())
        return actions

    # --- streams ------------------------------------------------------------------------------

    def stream_partial(self, key: Key, partial: AsrPartial) -> list[Action]:
        """A pass produced a partial: sent while the stream is held (not once cancelled)."""
        if self.streams.holds(key) and self.phase is Phase.REGISTERED:
            return [Send(partial)]
        return []

    def stream_finished(self, key: Key, result: JobResult) -> list[Action]:
        """The stream's one result (its final pass, or its failure)."""
        actions: list[Action] = []
        if self.streams.finish(key, result.success) and self.phase is Phase.REGISTERED:
            actions.append(Send(result, binary=self.binary and result.audio_data() is not None))
        actions.extend(self._stop_if_done())
        return actions

    def stream_failed(self, key: Key, code: str, message: str) -> list[Action]:
        """The stream cannot go on (bad audio, a gap, a model failure): one failed result,
        and the stream is forgotten."""
        stream = self.streams.streams.get(key)
        if stream is None:
            return []
        result = stream.job.answer(
            self.node_id, success=False, error=JobError(code=code, message=message[:1024])
        )
        return [EndStream(key), *self.stream_finished(key, result)]

    def refusal(self, job: JobAssign, code: str) -> JobResult:
        code = str(code)
        message = f"node {self.node_id} did not run the job: {code}"
        return job.answer(self.node_id, success=False, error=JobError(code=code, message=message))

    def backend_withdrawn(self, withdrawals: list[Withdrawal]) -> list[Action]:
        """Models the pipeline took out after failing jobs in a row: tell the scheduler why
        (`node_error`, INFERENCE_BACKEND_ERROR) and send the reduced capabilities at once, so
        it stops sending such jobs here before the next regular heartbeat."""
        if not withdrawals:
            return []
        self.capabilities_changed = True
        if self.phase is not Phase.REGISTERED:
            return []  # the next register carries the reduced capabilities
        actions: list[Action] = [
            Send(
                NodeError(
                    node_id=self.node_id,
                    code=ErrorCode.INFERENCE_BACKEND_ERROR.value,
                    message=(
                        f"{w.kind} model {w.model_id} failed {w.failures} jobs in a row and is "
                        f"no longer advertised: {w.cause}"
                    )[:1024],
                    details={"kind": w.kind, "model_id": w.model_id, "failures": w.failures},
                )
            )
            for w in withdrawals
        ]
        actions.append(Beat())
        return actions

    # --- heartbeats and local stop ------------------------------------------------------------

    def heartbeat(
        self, timestamp_ms: int, usage: ResourceUsage, register: NodeRegister | None
    ) -> NodeHeartbeat:
        """The next heartbeat. `register` is the current register message when capabilities
        changed since the last beat (its capability fields ride along once)."""
        beat = NodeHeartbeat(
            node_id=self.node_id,
            timestamp=timestamp_ms,
            resource_usage=usage,
            draining=self.book.draining,
        )
        if register is not None:
            beat = beat.model_copy(update={f: getattr(register, f) for f in CAPABILITY_FIELDS})
            self.capabilities_changed = False
        return beat

    def local_stop(self) -> list[Action]:
        """Ctrl-C on the node: refuse new jobs, finish running ones, then leave."""
        self.book.draining = True
        self.shutdown_requested = True
        actions: list[Action] = []
        if self.phase is Phase.REGISTERED:
            actions.append(Beat())
        actions.extend(self._stop_if_done())
        return actions

    def _stop_if_done(self) -> list[Action]:
        if self.shutdown_requested and self.book.idle and self.streams.idle:
            self.phase = Phase.STOPPED
            return [Close("shutdown")]
        return []


def key_of(job: JobAssign) -> Key:
    return (job.job_id, job.attempt_id)
