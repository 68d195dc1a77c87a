"""The job table: every live job, the queue of those waiting for a node, and the links from
sessions and nodes to their jobs.

It owns one invariant across three places: a job id is in the table, in its session's
`job_ids` and (while assigned) in its node's `in_flight` until `end` removes it from all of
them at once, so no session or node is left pointing at a job that is gone.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

from .jobs import Job, JobQueue, JobState
from .registry import NodeRegistry
from .sessions import Session, SessionTable


class JobTable:
    def __init__(
        self,
        sessions: SessionTable,
        registry: NodeRegistry,
        queue: JobQueue,
        id_prefix: str,
    ) -> None:
        self._by_id: dict[str, Job] = {}
        self._sessions = sessions
        self._registry = registry
        self.queue = queue
        self.progress_at: dict[str, float] = {}
        """When each node last finished a job: a queued job waits as long as a node that could
        run it keeps finishing jobs (it is making progress), and fails only when none does."""
        # Job ids are unique across scheduler restarts without a random draw per job: a late
        # result from before a restart can never match a new job. Both lookups below are the
        # C-level callables themselves (no Python frame per call: they run for every message).
        self.new_id: Callable[[], str] = map(
            f"job-{id_prefix}-{{}}".format, itertools.count(1)
        ).__next__
        """The next job id: `job-<prefix>-1`, `-2`, ..."""
        self.get: Callable[[str], Job | None] = self._by_id.get
        """The live job with this id, or None."""

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._by_id

    def __getitem__(self, job_id: str) -> Job:
        return self._by_id[job_id]

    def values(self) -> Iterator[Job]:
        return iter(list(self._by_id.values()))

    def add(self, job: Job, session: Session) -> None:
        self._by_id[job.job_id] = job
        session.job_ids.add(job.job_id)

    def end(self, job: Job) -> None:
        """Forget a job that has ended (result, error, or its session gone): O(1)."""
        job.move(JobState.DONE)
        self._by_id.pop(job.job_id, None)
        self.queue.remove(job)
        session = self._sessions.get(job.session_id)
        if session is not None:
            session.job_ids.discard(job.job_id)
        node = self._registry.nodes.get(job.node_id or "")
        if node is not None:
            node.in_flight.discard(job.job_id)
            if job.stream is not None:
                node.stream_jobs.discard(job.job_id)

    def forget_progress_of_unknown_nodes(self) -> None:
        """Drop `progress_at` entries of nodes the registry has forgotten (bounded by nodes)."""
        for node_id in [n for n in self.progress_at if n not in self._registry.nodes]:
            del self.progress_at[node_id]
