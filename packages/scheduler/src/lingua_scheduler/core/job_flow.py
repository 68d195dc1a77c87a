"""Jobs: dispatch and queueing, acks, results, retries and failures."""

from __future__ import annotations

from typing import Any

from lingua_protocol import (
    ErrorCode,
    JobAck,
    JobResult,
    TranslationResult,
    error_message,
)

from .actions import Action, Send
from .jobs import Job
from .registry import NodeRecord
from .selection import pick_node
from .state import CoreState, log


class JobFlow(CoreState):
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
        if any(_serving(nodes)) and len(self.queue) < self.s.max_queue:
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
            node = pick_node(self.capable.nodes(job.needs), self.rng, None, frozenset(job.tried))
            if node is not None:
                actions += self._assign(job, node, now)
        return actions


def _serving(nodes: list[NodeRecord]) -> list[NodeRecord]:
    """The nodes that take jobs now or may soon (busy ones included)."""
    return [n for n in nodes if n.status in ("ready", "degraded")]
