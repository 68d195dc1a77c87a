"""Jobs: dispatch and queueing, acks, results, retries and failures.

Each handler builds every message it will send before it changes any state (validate, then
mutate): a failure while building leaves the job as it was, and the caller turns it into an
error for the job's utterance.
"""

from __future__ import annotations

from typing import Any

from lingua_protocol import (
    ErrorCode,
    JobAck,
    JobResult,
    Message,
    RoomError,
    TranslationResult,
    error_message,
)

from .actions import Action, Send
from .jobs import Job, JobState
from .registry import NodeRecord
from .selection import JobNeeds, pick_node
from .state import CoreState, log


def _code(code: str) -> ErrorCode:
    return ErrorCode(code) if code in ErrorCode.__members__ else ErrorCode.INTERNAL_ERROR


class JobFlow(CoreState):
    # ------------------------------------------------------------------ jobs

    def _job_ack(self, node: NodeRecord, message: JobAck, now: float) -> list[Action]:
        job = self.jobs.get(message.job_id)
        if job is None or job.node_id != node.node_id or job.state is not JobState.ASSIGNED:
            return []
        if message.attempt_id is not None and message.attempt_id != job.attempt_id:
            return []
        job.move(JobState.RUNNING)
        self._set_deadline(
            job, now + self.s.job_timeout_s + self.s.job_timeout_per_audio_s * job.audio_s
        )
        self._job_log(job, "running", now)
        return []

    def _job_result(self, node: NodeRecord, message: JobResult, now: float) -> list[Action]:
        job = self.jobs.get(message.job_id)
        stale = (
            job is None
            or job.node_id != node.node_id
            or job.state not in (JobState.ASSIGNED, JobState.RUNNING)
            or (message.attempt_id is not None and message.attempt_id != job.attempt_id)
        )
        if stale or job is None:
            self._count("results_dropped_stale")
            log.info("job=%s stale result from node=%s dropped", message.job_id, node.node_id)
            return []
        node.in_flight.discard(job.job_id)
        self.progress_at[node.node_id] = now
        if message.success:
            node.jobs_done += 1
            try:
                actions = self._succeed(job, message, now)
            except ValueError as exc:  # a result that cannot be relayed: the job fails
                log.warning(
                    "job=%s result from node=%s not relayable: %s", job.job_id, node.node_id, exc
                )
                actions = self._fail(
                    job,
                    ErrorCode.INTERNAL_ERROR.value,
                    "the node's result could not be relayed",
                    now,
                )
            return actions + self._dispatch_queue(now)
        node.jobs_failed += 1
        code = message.error.code if message.error else ErrorCode.INTERNAL_ERROR.value
        text = message.error.message if message.error else "job failed"
        job.last_error = code
        retry = code in ErrorCode.__members__ and ErrorCode(code).retryable
        if retry:
            return self._retry(job, code, now) + self._dispatch_queue(now)
        return self._fail(job, code, text, now) + self._dispatch_queue(now)

    def _succeed(self, job: Job, r: JobResult, now: float) -> list[Action]:
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
        # Every message first: a result that does not validate fails the job, not the loop.
        copies = [
            (listener, TranslationResult.model_validate({**base, "session_id": listener}))
            for listener in job.listeners
        ]
        session = self.sessions.get(job.session_id)
        own = (
            TranslationResult.model_validate({**base, "session_id": job.session_id})
            if job.primary and session is not None
            else None
        )
        self._end_job(job)
        self.observer.job_outcome("success")
        self._count("jobs_succeeded")
        self._job_log(job, "succeeded", now)
        if session is not None and self.s.sticky_nodes and job.node_id:
            session.sticky_node_id = job.node_id
        actions: list[Action] = []
        for listener, copy in copies:
            actions += self._send_to_session(listener, copy)
        if own is not None and session is not None:
            actions += self._deliver(
                session, session.sequencer.finish(job.utterance_index, own, now)
            )
        return actions

    def _fail(self, job: Job, code: str, text: str, now: float) -> list[Action]:
        error_code = _code(code)
        copies: list[tuple[str, Message]] = [
            (
                listener,
                RoomError(
                    room_code=job.room_code or "",
                    session_id=listener,
                    speaker_session_id=job.session_id,
                    speaker_display_name=job.speaker_name,
                    utterance_index=job.utterance_index,
                    code=error_code.value,
                    message=text,
                    tgt_lang=job.tgt_lang,
                ),
            )
            for listener in job.listeners
        ]
        session = self.sessions.get(job.session_id)
        own = (
            error_message(
                error_code, text, session_id=job.session_id, utterance_index=job.utterance_index
            )
            if job.primary and session is not None
            else None
        )
        self._end_job(job)
        self.observer.job_outcome("failed")
        self._count("jobs_failed")
        self._job_log(job, "failed", now, code=code)
        actions: list[Action] = []
        for listener, copy in copies:
            actions += self._send_to_session(listener, copy)
        if own is not None and session is not None:
            actions += self._deliver(
                session, session.sequencer.finish(job.utterance_index, own, now)
            )
        return actions

    def _retry(self, job: Job, code: str, now: float) -> list[Action]:
        if job.node_id is not None:
            job.tried.add(job.node_id)
            node = self.registry.nodes.get(job.node_id)
            if node is not None:
                node.in_flight.discard(job.job_id)
        job.last_error = code
        self._job_log(job, "retrying", now, code=code)
        self._count("jobs_retried")
        if job.attempt >= self.s.max_attempts:
            return self._fail(job, code, f"gave up after {job.attempt} attempt(s): {code}", now)
        return self._dispatch(job, now, retry=True)

    def _dispatch(self, job: Job, now: float, *, retry: bool = False) -> list[Action]:
        nodes = self.capable.nodes(job.needs)
        session = self.sessions.get(job.session_id)
        sticky = session.sticky_node_id if (session and self.s.sticky_nodes) else None
        exclude = frozenset(job.tried)
        node = pick_node(nodes, self.rng, sticky, exclude)
        if node is None and retry and not any(n.node_id not in exclude for n in _serving(nodes)):
            # Every capable node has been tried: allow them again rather than give up early.
            node = pick_node(nodes, self.rng, None, frozenset({job.node_id or ""}))
        if node is not None:
            return self._assign(job, node, now)
        if any(_serving(nodes)):
            if not self.queue.fits(job):
                self._count("queue_full")
                return self._fail(
                    job,
                    ErrorCode.NODE_OVERLOADED.value,
                    f"every node that can run {job.src_lang}->{job.tgt_lang} is busy and the "
                    f"scheduler's queue is full ({len(self.queue)} jobs, "
                    f"{self.queue.bytes} of {self.queue.max_bytes} bytes)",
                    now,
                )
            self.queue.add(job)
            job.move(JobState.QUEUED)
            job.node_id = None
            job.queued_at = job.queued_at or now
            self._set_deadline(job, now + self.s.queue_timeout_s)
            self._job_log(job, "queued", now)
            return []
        if retry:
            return self._fail(
                job, job.last_error, f"no other node can take the job after {job.last_error}", now
            )
        return self._fail(job, ErrorCode.NO_AVAILABLE_NODE.value, _no_node(job), now)

    def _queue_deadline(self, job: Job, now: float) -> list[Action]:
        """A queued job's wait ran out: it keeps waiting while a node that could run it is
        finishing jobs, and fails only when none is (or none is left)."""
        serving = _serving(self.capable.nodes(job.needs))
        if not serving:
            return self._fail(job, ErrorCode.NO_AVAILABLE_NODE.value, _no_node(job), now)
        last = max(self.progress_at.get(n.node_id, float("-inf")) for n in serving)
        if last > now - self.s.queue_timeout_s:
            self._set_deadline(job, last + self.s.queue_timeout_s)
            return []
        return self._fail(
            job,
            ErrorCode.NODE_OVERLOADED.value,
            f"every node that can run {job.src_lang}->{job.tgt_lang} is busy and none "
            f"finished a job in {self.s.queue_timeout_s:.0f} s",
            now,
        )

    def _assign(self, job: Job, node: NodeRecord, now: float) -> list[Action]:
        assert node.conn_id is not None
        timeout_s = self.s.job_timeout_s + self.s.job_timeout_per_audio_s * job.audio_s
        self.queue.remove(job)
        job.next_attempt()
        message = job.assign_message(int(timeout_s * 1000))
        job.move(JobState.ASSIGNED)
        job.node_id = node.node_id
        job.assigned_at = now
        self._set_deadline(job, now + self.s.ack_timeout_s)
        node.in_flight.add(job.job_id)
        self.observer.dispatch_latency(now - job.created_at)
        self._job_log(job, "assigned", now)
        return [Send(node.conn_id, message)]

    def _dispatch_queue(self, now: float) -> list[Action]:
        """Give waiting jobs to nodes with room, oldest first; stops as soon as no node has
        room, so a result costs O(nodes) here, not O(queue), while the cluster is full."""
        if not len(self.queue):
            return []
        free = sum(
            max(0, n.max_jobs - len(n.in_flight))
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
                actions += self._assign(job, node, now)
                free -= 1
            elif not job.tried:
                blocked.add(job.needs)
        return actions


def _serving(nodes: list[NodeRecord]) -> list[NodeRecord]:
    """The nodes that take jobs now or may soon (busy ones included)."""
    return [n for n in nodes if n.status in ("ready", "degraded")]


def _no_node(job: Job) -> str:
    pair = f"{job.src_lang}->{job.tgt_lang}"
    return (
        f"no available node for {pair}{' with TTS' if job.needs.use_tts else ''} "
        f"(utterance {job.utterance_index})"
    )
