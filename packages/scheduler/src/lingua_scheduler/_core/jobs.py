"""Jobs and their attempts. A job is one utterance for one target language.

A job's state moves only along `TRANSITIONS` (in the spirit of h11's `_state.py`): a move
that is not in the table is a bug in the core and raises `InvalidTransition`, which the core's
event guard turns into an error for the job's utterance instead of a silently wrong state.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from lingua_protocol import (
    AudioData,
    AudioFormat,
    ErrorCode,
    FeatureFlags,
    JobAssign,
    PipelineConfig,
)

from .selection import JobNeeds
from .streams import Stream

log = logging.getLogger("lingua.scheduler")


class JobState(Enum):
    NEW = "new"
    QUEUED = "queued"
    ASSIGNED = "assigned"
    RUNNING = "running"
    DONE = "done"


TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.NEW: frozenset({JobState.QUEUED, JobState.ASSIGNED, JobState.DONE}),
    JobState.QUEUED: frozenset({JobState.QUEUED, JobState.ASSIGNED, JobState.DONE}),
    JobState.ASSIGNED: frozenset(
        {JobState.RUNNING, JobState.QUEUED, JobState.ASSIGNED, JobState.DONE}
    ),
    JobState.RUNNING: frozenset({JobState.QUEUED, JobState.ASSIGNED, JobState.DONE}),
    JobState.DONE: frozenset(),
}
"""Which state may follow which. ASSIGNED/RUNNING -> ASSIGNED/QUEUED is a retry; DONE is
final (result, error, or the session gone)."""

_ALLOWED: dict[str, frozenset[str]] = {
    state._value_: frozenset(target._value_ for target in targets)
    for state, targets in TRANSITIONS.items()
}
"""`TRANSITIONS` by the states' values: a job moves three times per utterance, and an Enum
member's hash is a Python-level call where a str's is cached."""


class InvalidTransition(RuntimeError):
    """A job was asked to move along an edge `TRANSITIONS` does not have."""


@dataclass(slots=True)
class Job:
    job_id: str
    session_id: str
    utterance_index: int
    src_lang: str
    tgt_lang: str
    pipeline: PipelineConfig
    features: FeatureFlags | None
    dialect: str | None
    audio: AudioData
    audio_format: AudioFormat
    sample_rate: int
    audio_s: float
    needs: JobNeeds
    created_at: float
    audio_bytes: int = 0
    primary: bool = True
    listeners: list[str] = field(default_factory=list)
    room_code: str | None = None
    speaker_name: str | None = None
    state: JobState = JobState.NEW
    attempt: int = 0
    attempt_id: str | None = None
    node_id: str | None = None
    deadline: float | None = None
    queued_at: float | None = None
    assigned_at: float | None = None
    tried: set[str] = field(default_factory=set)
    last_error: ErrorCode = ErrorCode.NODE_UNAVAILABLE
    stream: Stream | None = None
    """Set on the one job of a streamed utterance that gets its chunks (`streams.py`)."""

    def move(self, to: JobState) -> None:
        if to._value_ not in _ALLOWED[self.state._value_]:
            raise InvalidTransition(f"job {self.job_id}: {self.state.value} -> {to.value}")
        self.state = to

    def next_attempt(self) -> str:
        self.attempt += 1
        self.attempt_id = f"{self.job_id}.{self.attempt}"
        return self.attempt_id

    def assign_message(self, timeout_ms: int) -> JobAssign:
        """Built without validating again (`trusted`): every value is the client's, validated
        when its utterance arrived, or the scheduler's own."""
        return JobAssign.trusted(
            job_id=self.job_id,
            session_id=self.session_id,
            utterance_index=self.utterance_index,
            src_lang=self.src_lang,
            tgt_lang=self.tgt_lang,
            dialect=self.dialect,
            features=self.features,
            pipeline=self.pipeline,
            audio=self.audio,
            audio_format=self.audio_format,
            sample_rate=self.sample_rate,
            attempt_id=self.attempt_id,
            timeout_ms=timeout_ms,
        )


class JobQueue:
    """Jobs waiting for a free node, oldest first, bounded in bytes (their audio): O(1) add,
    O(1) removal from anywhere (a job whose session went away), in-order iteration."""

    def __init__(self, max_jobs: int, max_bytes: int) -> None:
        self.max_jobs = max_jobs
        self.max_bytes = max_bytes
        self._jobs: dict[str, Job] = {}
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._jobs

    def __iter__(self) -> Iterator[Job]:
        return iter(list(self._jobs.values()))

    def fits(self, job: Job) -> bool:
        """Whether `job` may wait here (always, if it already does)."""
        if job.job_id in self._jobs:
            return True
        return len(self._jobs) < self.max_jobs and self.bytes + job.audio_bytes <= self.max_bytes

    def add(self, job: Job) -> None:
        if job.job_id not in self._jobs:
            self._jobs[job.job_id] = job
            self.bytes += job.audio_bytes

    def remove(self, job: Job) -> None:
        if self._jobs.pop(job.job_id, None) is not None:
            self.bytes -= job.audio_bytes


def log_job(job: Job, state: str, now: float, **extra: Any) -> None:
    """One line per job state change, with the ids an operator greps for."""
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
