"""When the core next has something to do: a heap of (time, key) entries.

The shell sleeps until `SchedulerCore.next_deadline()` instead of polling every job and
session on a short tick. Entries are never removed when a deadline moves: the owner pushes the
new time and, when an old entry comes due, checks it against the object's current deadline
and ignores it if it no longer holds (lazy deletion). Each push and pop is O(log n); nothing
scans all jobs or sessions.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Literal

DeadlineKind = Literal["job", "gap", "slow", "stream"]
Key = tuple[DeadlineKind, str]
"""(kind, id): ("job", job_id), ("gap", session_id), ("slow", ""), ("stream", Stream.key)."""


class Deadlines:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Key]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, when: float, key: Key) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), key))

    def next(self) -> float | None:
        """The earliest entry's time (it may turn out stale: waking for it costs a pop)."""
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[Key]:
        """Remove and return every key whose time is <= now, earliest first."""
        due: list[Key] = []
        while self._heap and self._heap[0][0] <= now:
            due.append(heapq.heappop(self._heap)[2])
        return due
