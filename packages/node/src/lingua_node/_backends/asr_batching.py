"""Batching concurrent utterances into one model call: the policy, and the threads' meeting point.

Why: on a GPU one encoder or decoder call costs about the same for one utterance as for
several (the kernels are launched per step, not per utterance), so k jobs that each call the
model alone wait for k calls where one would do. CTranslate2's Whisper takes a batch of
inputs (`encode`, `generate`, `align`); faster-whisper calls it with one utterance at a time
from each job's worker thread. `asr_batched.py` puts a stand-in for the CTranslate2 model
under faster-whisper that hands every call to a `Batcher`; this module decides which calls
go together, and knows nothing of Whisper.

The rule (`BatchCollector`, pure: an injected `now`, no threads, no sleeping):

- Calls go together only when their `key` is equal (same method, input shape and decoding
  options: Whisper's encoder has no padding mask, so padding a shorter input to a longer one
  would change what it hears, and results must equal the unbatched ones).
- A batch may run as soon as (a) it holds `max_batch` calls, or (b) every transcription in
  progress is waiting in some batch or running one (nobody else could join it), or
  (c) `window_s` has passed since its first call. So a lone job never waits, and a job that
  is still computing its features holds the others back by at most the window.
- At most `max_running` batches run at once; a batch that may run waits for one of them to
  finish (the oldest first), and gathers the calls that arrive meanwhile. On a GPU that is
  one: calls that arrive while the device is busy are what fill a batch (jobs running side by
  side rarely reach the model at the same moment, and once out of step they stay so). On the
  CPU it is the jobs at once, so batching never takes parallelism away.

A call from a thread that did not announce its transcription (`caller()`) counts as nobody
else could join: it never waits. Waiting calls are at most the transcriptions in progress
(each waits for one call at a time), which the node's job limit bounds.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
R = TypeVar("R")

DEFAULT_WINDOW_MS = 10.0
"""How long the first call of a batch waits for the others at most. Long enough for a job
still computing its log-mel features (a few ms for a 10 s window) to join; short against
the ASR of an utterance on a GPU (tens of ms) and far below the 1 s latency target."""

BatchSetting = Literal["auto", "on", "off"]


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    max_batch: int
    """Most calls in one batch: the node's jobs at once (no more can be waiting)."""
    window_s: float = DEFAULT_WINDOW_MS / 1000
    """Longest wait of a batch's first call for others (rule (c) in the module docstring)."""
    max_running: int = 1
    """Batches running at once; the others wait for one to finish, gathering calls."""

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {self.max_batch}")
        if self.max_running < 1:
            raise ValueError(f"max_running must be at least 1, not {self.max_running}")
        if not 0 <= self.window_s <= 1:
            raise ValueError(f"window_s must be within 0 to 1 s, not {self.window_s}")


def batch_policy(
    setting: BatchSetting, device: str, jobs: int, window_ms: float = DEFAULT_WINDOW_MS
) -> BatchPolicy | None:
    """The policy for a recogniser loaded on `device` for `jobs` jobs at once; None: calls
    run as they come. `auto` batches on CUDA only: on the CPU the node's jobs already run in
    parallel on their own cores, and a batch runs on one job's threads (measured in
    docs/node.md: batching lowered throughput on the CPU). One job alone has nothing to
    batch with. On CUDA one batch runs at a time; on the CPU as many as jobs."""
    batching = setting == "on" or (setting == "auto" and device == "cuda")
    if not batching or jobs < 2:
        return None
    running = 1 if device == "cuda" else jobs
    return BatchPolicy(max_batch=jobs, window_s=window_ms / 1000, max_running=running)


@dataclass(slots=True, eq=False)
class Batch(Generic[K, T]):
    key: K
    items: list[T]
    opened_s: float
    """When its first call arrived (the collector's clock)."""


@dataclass(slots=True)
class BatchCollector(Generic[K, T]):
    """Which waiting calls run together, and when: the rule of the module docstring.

    Plain state; the caller passes `now` (seconds, any monotonic clock) and carries out the
    batches `take_ready` hands back, then reports each with `done`."""

    policy: BatchPolicy
    callers: int = 0
    """Transcriptions in progress (announced with `caller_started`)."""
    _open: list[Batch[K, T]] = field(default_factory=list)
    _waiting: int = 0
    _running: int = 0
    _running_batches: int = 0

    def caller_started(self) -> None:
        self.callers += 1

    def caller_finished(self) -> None:
        self.callers = max(0, self.callers - 1)

    def add(self, key: K, item: T, now: float) -> None:
        """A call waits for its batch: the open batch of its key with room, else a new one."""
        batch = next(
            (b for b in self._open if b.key == key and len(b.items) < self.policy.max_batch),
            None,
        )
        if batch is None:
            self._open.append(Batch(key, [item], now))
        else:
            batch.items.append(item)
        self._waiting += 1

    def take_ready(self, now: float) -> list[Batch[K, T]]:
        """The batches to run now, taken out of waiting; each must be reported with `done`."""
        free = self.policy.max_running - self._running_batches
        if free <= 0:
            return []
        nobody_else = self.callers - self._waiting - self._running <= 0
        ready = [
            b
            for b in self._open  # oldest first
            if nobody_else
            or len(b.items) >= self.policy.max_batch
            or now - b.opened_s >= self.policy.window_s
        ][:free]
        for batch in ready:
            self._open.remove(batch)
            self._waiting -= len(batch.items)
            self._running += len(batch.items)
            self._running_batches += 1
        return ready

    def done(self, batch: Batch[K, T]) -> None:
        """A batch from `take_ready` has finished: its callers may call again."""
        self._running = max(0, self._running - len(batch.items))
        self._running_batches = max(0, self._running_batches - 1)

    def wait_s(self, now: float) -> float | None:
        """Until the earliest open batch's window ends (0 when past); None: no open batch, or
        none may run before a running batch is `done`."""
        if not self._open or self._running_batches >= self.policy.max_running:
            return None
        first = min(b.opened_s for b in self._open)
        return max(0.0, first + self.policy.window_s - now)

    @property
    def waiting(self) -> int:
        return self._waiting


class _Ticket(Generic[T, R]):
    """One call waiting for its batch; compared by identity."""

    __slots__ = ("error", "finished", "item", "result")

    def __init__(self, item: T) -> None:
        self.item = item
        self.result: R | None = None
        self.error: BaseException | None = None
        self.finished = False

    def outcome(self) -> R:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


class Batcher(Generic[K, T, R]):
    """The thread shell over `BatchCollector`: worker threads `submit` calls and get their
    own result back; a batch is run by one of its own callers' threads (so it runs on an
    inference worker, never on the event loop, and no extra thread is needed).

    `run(key, items)` returns one result per item, in order; what it raises is raised in
    every caller of that batch (each job then fails on its own, as it would unbatched).
    Waiting uses the clock `clock` and a condition variable, never a sleep."""

    def __init__(
        self,
        policy: BatchPolicy,
        run: Callable[[K, list[T]], list[R]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self._run = run
        self._clock = clock
        self._core: BatchCollector[K, _Ticket[T, R]] = BatchCollector(policy)
        self._cond = threading.Condition()
        self._claimable: list[Batch[K, _Ticket[T, R]]] = []
        self.sizes: Counter[int] = Counter()
        """Batches run, by size (at most `max_batch` keys): what batching achieved."""

    @contextmanager
    def caller(self) -> Iterator[None]:
        """Announce a transcription in progress for its whole length, so the batches its
        calls could join wait for it (within the window)."""
        with self._cond:
            self._core.caller_started()
        try:
            yield
        finally:
            with self._cond:
                self._core.caller_finished()
                self._release()

    def submit(self, key: K, item: T) -> R:
        """Wait for `item`'s batch to run (by this thread or another member's); its result."""
        ticket: _Ticket[T, R] = _Ticket(item)
        with self._cond:
            self._core.add(key, ticket, self._clock())
            while True:
                if ticket.finished:
                    return ticket.outcome()
                self._release()
                mine = next((b for b in self._claimable if any(t is ticket for t in b.items)), None)
                if mine is not None:
                    self._claimable.remove(mine)
                    break
                self._cond.wait(self._core.wait_s(self._clock()))
        self._execute(mine)
        return ticket.outcome()

    def _release(self) -> None:
        """Move the batches the rule lets run into the claimable list (lock held)."""
        ready = self._core.take_ready(self._clock())
        if ready:
            self._claimable.extend(ready)
            self._cond.notify_all()

    def _execute(self, batch: Batch[K, _Ticket[T, R]]) -> None:
        tickets = batch.items
        try:
            results = self._run(batch.key, [t.item for t in tickets])
            if len(results) != len(tickets):
                raise RuntimeError(
                    f"a batch of {len(tickets)} calls returned {len(results)} results"
                )
        except BaseException as exc:  # noqa: BLE001  (handed to every caller, who raises it)
            for t in tickets:
                t.error = exc
        else:
            for t, result in zip(tickets, results, strict=True):
                t.result = result
        with self._cond:
            for t in tickets:
                t.finished = True
            self.sizes[len(tickets)] += 1
            self._core.done(batch)
            self._release()
            self._cond.notify_all()
