"""Backends that start failing while the node runs: counted, and taken out after N in a row.

A model that passed its self-test can still break later (the GPU's memory taken by another
program, a driver reset). A node that keeps advertising it fails every job the scheduler sends
for it, and the scheduler keeps sending them. So the pipeline reports each backend call here;
`failure_limit` failures in a row of one model (kind and id) withdraw it: the node stops
advertising what only it served, and tells the scheduler why with a `node_error`. A success
resets the count, so an odd failure (one bad input) withdraws nothing.

Plain state under a lock (worker threads report concurrently); the loader does the
withdrawing and the session the telling.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

DEFAULT_FAILURE_LIMIT = 3


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """Model `model_id` of `kind` ("asr", "nmt", "tts") failed `failures` times in a row."""

    kind: str
    model_id: str
    failures: int
    cause: str


class BackendHealth:
    def __init__(self, failure_limit: int = DEFAULT_FAILURE_LIMIT) -> None:
        if failure_limit < 1:
            raise ValueError("failure_limit must be at least 1")
        self.failure_limit = failure_limit
        self._lock = threading.Lock()
        self._in_a_row: dict[tuple[str, str], int] = {}
        self._withdrawn: set[tuple[str, str]] = set()
        self._pending: list[Withdrawal] = []

    def succeeded(self, kind: str, model_id: str) -> None:
        with self._lock:
            self._in_a_row.pop((kind, model_id), None)

    def failed(self, kind: str, model_id: str, cause: str) -> Withdrawal | None:
        """Count a failure; the `Withdrawal` when this one reaches the limit (once per model)."""
        key = (kind, model_id)
        with self._lock:
            if key in self._withdrawn:
                return None
            count = self._in_a_row.get(key, 0) + 1
            self._in_a_row[key] = count
            if count < self.failure_limit:
                return None
            self._withdrawn.add(key)
            del self._in_a_row[key]
            withdrawal = Withdrawal(kind, model_id, count, cause)
            self._pending.append(withdrawal)
            return withdrawal

    def is_withdrawn(self, kind: str, model_id: str) -> bool:
        with self._lock:
            return (kind, model_id) in self._withdrawn

    def take_withdrawals(self) -> list[Withdrawal]:
        """The withdrawals not yet reported to the scheduler (each is returned once)."""
        with self._lock:
            out, self._pending = self._pending, []
            return out
