"""The node's job book: which job attempts it holds, which were cancelled, whether it drains.

Plain state, no I/O: the agent asks it what to do and tells it what happened. Attempts are
keyed by (job_id, attempt_id) because the scheduler may give a job back to this node as a new
attempt after a reconnect. A cancelled attempt is dropped if it has not started and its result
discarded if it has.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

Key = tuple[str, str | None]


@dataclass
class JobBook:
    max_jobs: int
    running: set[Key] = field(default_factory=set)
    cancelled: set[Key] = field(default_factory=set)
    draining: bool = False
    done: int = 0
    failed: int = 0
    discarded: int = 0

    def admit(self, key: Key) -> str | None:
        """None when the attempt is taken, else the error code that says why not."""
        if self.draining:
            return "NODE_UNAVAILABLE"
        if len(self.running) >= self.max_jobs:
            return "NODE_OVERLOADED"
        self.running.add(key)
        return None

    def cancel(self, job_id: str, attempt_id: str | None = None) -> int:
        hits = {k for k in self.running if k[0] == job_id and attempt_id in (None, k[1])}
        self.cancelled |= hits
        return len(hits)

    def should_start(self, key: Key) -> bool:
        return key in self.running and key not in self.cancelled

    def finish(self, key: Key, success: bool) -> bool:
        """Forget the attempt; True when its result should be sent."""
        self.running.discard(key)
        if key in self.cancelled:
            self.cancelled.discard(key)
            self.discarded += 1
            return False
        if success:
            self.done += 1
        else:
            self.failed += 1
        return True

    def drop_all(self) -> None:
        """The connection is gone: the scheduler has already given these attempts to others."""
        self.cancelled |= self.running

    @property
    def idle(self) -> bool:
        return not self.running


@dataclass(frozen=True, slots=True)
class StageGate:
    """What a running job asks between its stages (decode, VAD, ASR, translation, TTS): may
    it go on? A stage that has started always finishes (inference cannot be interrupted
    safely), so a cancelled or late job stops at the next boundary, not at once.

    `deadline` is on the `clock`'s scale (the node's monotonic clock): when the job arrived
    plus its `job_assign.timeout_ms`, or None when the scheduler set none. `cancelled` is
    read from a worker thread: a set membership test on the job book, safe under the GIL."""

    deadline: float | None = None
    cancelled: Callable[[], bool] = lambda: False
    clock: Callable[[], float] = time.monotonic

    def stop_reason(self) -> str | None:
        """None to go on; else "cancelled" or "timeout"."""
        if self.cancelled():
            return "cancelled"
        if self.deadline is not None and self.clock() > self.deadline:
            return "timeout"
        return None
