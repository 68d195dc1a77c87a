"""Jobs: dispatch and queueing, acks, results, retries, timeouts and failures.

Each handler builds every message it will send before it changes any state (validate, then
mutate): a failure while building leaves the job as it was, and the caller turns it into an
error for the job's utterance.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from lingua_protocol import (
    ErrorCode,
    JobAck,
    JobCancel,
    JobResult,
    Message,
    RoomError,
    TranslationResult,
    error_message,
)

from .actions import Action, Send
from .delivery import Delivery
from .jobs import Job, JobState, log_job
from .registry import NodeRecord
from .selection import JobNeeds, pick_node
from .sessions import Session
from .streams import Stream, has_stream_room, pick_stream_node, stream_assign
from .tables import CoreTables, JobOutcome

log = logging.getLogger("lingua.scheduler")


def error_code(code: str) -> ErrorCode:
    """A node's error code as the protocol's enum (INTERNAL_ERROR for one it does not know)."""
    return ErrorCode(code) if code in ErrorCode.__members__ else ErrorCode.INTERNAL_ERROR


class JobFlow:
    """Moves jobs along `jobs.TRANSITIONS`; the only writer of job state besides the job
    table's `end`."""

    def __init__(self, tables: CoreTables, delivery: Delivery) -> None:
        self.s = tables.config
        self.rng = tables.random.choice_rng
        self.stats = tables.stats
        self.observer = tables.stats.observer
        self.sessions = tables.sessions
        self.registry = tables.registry
        self.capable = tables.capable
        self.jobs = tables.jobs
        self.queue = tables.jobs.queue
        self.deadlines = tables.deadlines
        self.delivery = delivery

    def set_deadline(self, job: Job, when: float | None) -> None:
        job.deadline = when
        if when is not None:
            self.deadlines.push(when, ("job", job.job_id))

    def deadline_passed(self, job: Job, now: float) -> list[Action]:
        """A job's timer fired: a queued job's wait, or an attempt's ack or run timeout."""
        if job.state is JobState.QUEUED:
            return self.queue_deadline(job, now)
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
        self.stats.count("job_timeouts" if acked else "ack_timeouts")
        return actions + self.retry(job, ErrorCode.JOB_TIMEOUT, now)

    def job_ack(self, node: NodeRecord, message: JobAck, now: float) -> list[Action]:
        job = self.jobs.get(message.job_id)
        if job is None or job.node_id != node.node_id or job.state is not JobState.ASSIGNED:
            return []
        if message.attempt_id is not None and message.attempt_id != job.attempt_id:
            return []
        job.move(JobState.RUNNING)
        stream = job.stream
        if stream is not None and not stream.closed:
            self.set_deadline(job, None)  # a stream's run timeout counts from its final chunk
        else:
            self.set_deadline(
                job, now + self.s.job_timeout_s + self.s.job_timeout_per_audio_s * job.audio_s
            )
        log_job(job, "running", now)
        return []

    def job_result(self, node: NodeRecord, message: JobResult, now: float) -> list[Action]:
        job = self.jobs.get(message.job_id)
        stale = (
            job is None
            or job.node_id != node.node_id
            or job.state not in (JobState.ASSIGNED, JobState.RUNNING)
            or (message.attempt_id is not None and message.attempt_id != job.attempt_id)
        )
        if stale or job is None:
            self.stats.count("results_dropped_stale")
            log.info("job=%s stale result from node=%s dropped", message.job_id, node.node_id)
            return []
        node.in_flight.discard(job.job_id)
        self.jobs.progress_at[node.node_id] = now
        if message.success:
            node.jobs_done += 1
            try:
                actions = self.succeed(job, message, now)
            except ValueError as exc:  # a result that cannot be relayed: the job fails
                log.warning(
                    "job=%s result from node=%s not relayable: %s", job.job_id, node.node_id, exc
                )
                actions = self.fail(
                    job,
                    ErrorCode.INTERNAL_ERROR,
                    "the node's result could not be relayed",
                    now,
                )
            return actions + self.dispatch_queue(now)
        node.jobs_failed += 1
        code = error_code(message.error.code) if message.error else ErrorCode.INTERNAL_ERROR
        text = message.error.message if message.error else "job failed"
        job.last_error = code
        if code.retryable:
            return self.retry(job, code, now) + self.dispatch_queue(now)
        return self.fail(job, code, text, now) + self.dispatch_queue(now)

    def succeed(self, job: Job, r: JobResult, now: float) -> list[Action]:
        base: dict[str, Any] = {
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
        if job.room_code is not None:
            base["room_code"] = job.room_code
            base["speaker_session_id"] = job.session_id
            base["speaker_display_name"] = job.speaker_name
        base = {k: v for k, v in base.items() if v is not None}
        # Every message first (validate, then mutate). The values are the node's result,
        # validated on arrival as the same field types, and the job's own: `trusted` builds
        # them without validating again.
        copies = [
            (listener, TranslationResult.trusted(**base, session_id=listener))
            for listener in job.listeners
        ]
        session = self.sessions.get(job.session_id)
        own = (
            TranslationResult.trusted(**base, session_id=job.session_id)
            if job.primary and session is not None
            else None
        )
        if session is not None and self.s.sticky_nodes and job.node_id:
            session.sticky_node_id = job.node_id
        return self._end(job, "success", copies, session, own, now)

    def fail(self, job: Job, code: ErrorCode, text: str, now: float) -> list[Action]:
        copies: list[tuple[str, Message]] = [
            (
                listener,
                RoomError(
                    room_code=job.room_code or "",
                    session_id=listener,
                    speaker_session_id=job.session_id,
                    speaker_display_name=job.speaker_name,
                    utterance_index=job.utterance_index,
                    code=code.value,
                    message=text,
                    tgt_lang=job.tgt_lang,
                ),
            )
            for listener in job.listeners
        ]
        session = self.sessions.get(job.session_id)
        own = (
            error_message(
                code, text, session_id=job.session_id, utterance_index=job.utterance_index
            )
            if job.primary and session is not None
            else None
        )
        return self._end(job, "failed", copies, session, own, now, code=code)

    def _end(
        self,
        job: Job,
        outcome: JobOutcome,
        copies: Sequence[tuple[str, Message]],
        session: Session | None,
        own: Message | None,
        now: float,
        **log_extra: object,
    ) -> list[Action]:
        """A job's one final answer: the job ends, each listener gets its copy, and the
        speaker's own answer goes through `session`'s sequencer (if the speaker's session is
        still there). Every message was built before this is called."""
        self.jobs.end(job)
        stream = job.stream
        if (
            stream is not None
            and session is not None
            and session.streams.get(job.utterance_index) is stream
        ):
            del session.streams[job.utterance_index]  # the utterance's audio is done with
        self.observer.job_outcome(outcome)
        self.stats.count("jobs_succeeded" if outcome == "success" else "jobs_failed")
        log_job(job, "succeeded" if outcome == "success" else "failed", now, **log_extra)
        actions: list[Action] = []
        for listener, copy in copies:
            actions += self.delivery.send_to_session(listener, copy)
        if own is not None and session is not None:
            actions += self.delivery.deliver(
                session, session.sequencer.finish(job.utterance_index, own, now)
            )
        return actions

    def retry(self, job: Job, code: ErrorCode, now: float) -> list[Action]:
        if job.node_id is not None:
            job.tried.add(job.node_id)
            node = self.registry.nodes.get(job.node_id)
            if node is not None:
                node.in_flight.discard(job.job_id)
                node.stream_jobs.discard(job.job_id)
        job.last_error = code
        log_job(job, "retrying", now, code=code)
        self.stats.count("jobs_retried")
        if job.attempt >= self.s.max_attempts:
            return self.fail(job, code, f"gave up after {job.attempt} attempt(s): {code}", now)
        return self.dispatch(job, now, retry=True)

    def dispatch(self, job: Job, now: float, *, retry: bool = False) -> list[Action]:
        nodes = self.capable.nodes(job.needs)
        session = self.sessions.get(job.session_id)
        sticky = session.sticky_node_id if (session and self.s.sticky_nodes) else None
        if job.stream is not None and not job.stream.closed:
            return self._dispatch_open_stream(job, job.stream, sticky, now)
        exclude = job.tried  # not changed until the job is assigned
        node = pick_node(nodes, self.rng, sticky, exclude)
        if node is None and retry and not any(n.node_id not in exclude for n in serving(nodes)):
            # Every capable node has been tried: allow them again rather than give up early.
            node = pick_node(nodes, self.rng, None, frozenset({job.node_id or ""}))
        if node is not None:
            return self.assign(job, node, now)
        if any(serving(nodes)):
            if not self.queue.fits(job):
                self.stats.count("queue_full")
                return self.fail(
                    job,
                    ErrorCode.NODE_OVERLOADED,
                    f"every node that can run {job.src_lang}->{job.tgt_lang} is busy and the "
                    f"scheduler's queue is full ({len(self.queue)} jobs, "
                    f"{self.queue.bytes} of {self.queue.max_bytes} bytes)",
                    now,
                )
            self.queue.add(job)
            job.move(JobState.QUEUED)
            job.node_id = None
            job.queued_at = job.queued_at or now
            self.set_deadline(job, now + self.s.queue_timeout_s)
            log_job(job, "queued", now)
            return []
        if retry:
            return self.fail(
                job, job.last_error, f"no other node can take the job after {job.last_error}", now
            )
        return self.fail(job, ErrorCode.NO_AVAILABLE_NODE, _no_node(job), now)

    def _dispatch_open_stream(
        self, job: Job, stream: Stream, sticky: str | None, now: float
    ) -> list[Action]:
        """A streamed utterance whose node went away before its final chunk: another node with
        a free stream slot gets all audio so far. With none, the utterance goes on buffered and
        runs as whole jobs at its final chunk (no more partials); a stream never waits in the
        queue, since its audio arrives in real time."""
        node = pick_stream_node(
            self.capable.nodes(job.needs), self.rng, sticky, frozenset(job.tried)
        )
        if node is not None:
            return self.assign(job, node, now)
        stream.job_id = None
        self.jobs.end(job)
        self.stats.count("streams_buffered")
        log_job(job, "buffered", now)
        return []

    def queue_deadline(self, job: Job, now: float) -> list[Action]:
        """A queued job's wait ran out: it keeps waiting while a node that could run it is
        finishing jobs, and fails only when none is (or none is left)."""
        able = serving(self.capable.nodes(job.needs))
        if not able:
            return self.fail(job, ErrorCode.NO_AVAILABLE_NODE, _no_node(job), now)
        last = max(self.jobs.progress_at.get(n.node_id, float("-inf")) for n in able)
        if last > now - self.s.queue_timeout_s:
            self.set_deadline(job, last + self.s.queue_timeout_s)
            return []
        return self.fail(
            job,
            ErrorCode.NODE_OVERLOADED,
            f"every node that can run {job.src_lang}->{job.tgt_lang} is busy and none "
            f"finished a job in {self.s.queue_timeout_s:.0f} s",
            now,
        )

    def assign(self, job: Job, node: NodeRecord, now: float) -> list[Action]:
        assert node.conn_id is not None
        timeout_s = self.s.job_timeout_s + self.s.job_timeout_per_audio_s * job.audio_s
        self.queue.remove(job)
        job.next_attempt()
        message = job.assign_message(int(timeout_s * 1000))
        stream = job.stream
        streamed = stream is not None and (not stream.closed or has_stream_room(node))
        if stream is not None and streamed:
            # All audio so far; a stream closed before this attempt goes whole to a node
            # without a free stream slot.
            message = stream_assign(message, stream, stream.partial_interval_ms)
            node.stream_jobs.add(job.job_id)
        job.move(JobState.ASSIGNED)
        job.node_id = node.node_id
        job.assigned_at = now
        self.set_deadline(job, now + self.s.ack_timeout_s)
        node.in_flight.add(job.job_id)
        self.observer.dispatch_latency(now - job.created_at)
        log_job(job, "assigned", now)
        return [Send(node.conn_id, message)]

    def dispatch_queue(self, now: float) -> list[Action]:
        """Give waiting jobs to nodes with room, oldest first; stops as soon as no node has
        room, so a result costs O(nodes) here, not O(queue), while the cluster is full."""
        if not len(self.queue):
            return []
        free = sum(
            max(0, n.max_jobs - len(n.in_flight) + len(n.stream_jobs))
            for n in self.registry.connected()
            if n.status in ("ready", "degraded")
        )
        actions: list[Action] = []
        blocked: set[JobNeeds] = set()  # kinds of job no node has room for now
        for job in self.queue:
            if free <= 0:
                break
            if job.needs in blocked:
                continue  # a set lookup, not a node search, for each job of a full kind
            node = pick_node(self.capable.nodes(job.needs), self.rng, None, frozenset(job.tried))
            if node is not None:
                actions += self.assign(job, node, now)
                free -= 1
            elif not job.tried:
                blocked.add(job.needs)
        return actions


def serving(nodes: list[NodeRecord]) -> list[NodeRecord]:
    """The nodes that take jobs now or may soon (busy ones included)."""
    return [n for n in nodes if n.status in ("ready", "degraded")]


def _no_node(job: Job) -> str:
    pair = f"{job.src_lang}->{job.tgt_lang}"
    return (
        f"no available node for {pair}{' with TTS' if job.needs.use_tts else ''} "
        f"(utterance {job.utterance_index})"
    )
