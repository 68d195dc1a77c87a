"""Which stream gets the next free inference worker: a round robin of the streams that are due.

Plain state with the time passed in, no thread and no clock of its own (tested in
`tests/test_stream_rotation.py`). Rules:

- A stream is due for a pass one interval after its last pass started (its first pass once
  `first_update` of audio is in); a partial pass never starts while another pass of the
  stream runs.
- A stream whose utterance ended (its final chunk arrived) comes first: its final pass is
  what the speaker waits for, and it happens once per utterance.
- Among the due streams, the one served longest ago goes first and goes to the back of the
  line when it starts: every due stream gets a worker before any gets a second one, so a
  stream whose passes are slow (a long buffer) delays the others by at most one pass each
  round and can never take the workers from them.
- A stream whose speaker just paused (`pause.py`) gets a pass at once, beside its running
  pass if one runs: that pass hears the end of what was said, and its hypothesis can then
  be the final one. Likewise the final pass does not wait for a running partial pass
  (whose words it makes useless), only for a running endpoint pass (whose words it
  reuses). So a stream runs at most two passes at once, and only around its pauses.
- When more passes are due than the workers can run, passes start late and each stream's
  interval stretches evenly: that stretch is what the node's stream capacity is sized
  against (`concurrency.stream_capacity`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K")


@dataclass
class Rotation(Generic[K]):
    due_at: OrderedDict[K, float] = field(default_factory=OrderedDict)
    """Each open stream's next due time; the order is the round robin (front: served longest
    ago)."""
    interval_s: dict[K, float] = field(default_factory=dict)
    closing: list[K] = field(default_factory=list)
    """Streams whose final chunk arrived, in arrival order."""
    busy: dict[K, int] = field(default_factory=dict)
    """Passes running per stream: one, or two while an endpoint or final pass overlaps."""
    hurried: list[K] = field(default_factory=list)
    """Streams whose speaker paused: a pass for each as soon as a worker is free."""

    def add(self, key: K, interval_s: float, first_due: float) -> None:
        self.due_at[key] = first_due
        self.interval_s[key] = interval_s

    def remove(self, key: K) -> None:
        self.due_at.pop(key, None)
        self.interval_s.pop(key, None)
        self.busy.pop(key, None)
        for line in (self.closing, self.hurried):
            if key in line:
                line.remove(key)

    def close(self, key: K) -> None:
        """The utterance ended: the stream's final pass is due at once."""
        if key in self.due_at and key not in self.closing:
            self.closing.append(key)
            if key in self.hurried:
                self.hurried.remove(key)

    def hurry(self, key: K, now: float) -> None:
        """The speaker paused: a pass is due now, beside the running one if one runs."""
        if key in self.due_at and key not in self.hurried and key not in self.closing:
            self.hurried.append(key)

    def next(
        self, now: float, final_may_overlap: Callable[[K], bool] = lambda key: True
    ) -> tuple[K, bool] | None:
        """The stream to run now and whether it is its final pass; None when none is due.
        The caller must report the pass's end with `done` (or `remove` the stream).
        `final_may_overlap(key)`: False while a running pass of the stream already decodes
        what the final would (its endpoint pass): the final then waits for it."""
        for key in self.closing:
            running = self.busy.get(key, 0)
            if running == 0 or (running == 1 and final_may_overlap(key)):
                self.closing.remove(key)
                self._start(key)
                return key, True
        for key in self.hurried:
            if self.busy.get(key, 0) <= 1:
                self.hurried.remove(key)
                self._start(key)
                self.due_at.move_to_end(key)
                return key, False
        for key, due in self.due_at.items():
            if not self.busy.get(key) and key not in self.closing and due <= now:
                self._start(key)
                self.due_at.move_to_end(key)
                return key, False
        return None

    def _start(self, key: K) -> None:
        self.busy[key] = self.busy.get(key, 0) + 1

    def done(self, key: K, started: float, interval_s: float | None = None) -> None:
        """The pass that started at `started` ended: next due one interval (the stream's,
        or `interval_s`) after it began."""
        running = self.busy.get(key, 0) - 1
        if running > 0:
            self.busy[key] = running
        else:
            self.busy.pop(key, None)
        if key in self.due_at:
            self.due_at[key] = started + (interval_s or self.interval_s[key])

    def postpone(self, key: K, now: float) -> None:
        """Nothing new to hear: check again one interval from now (no pass ran)."""
        self.done(key, now)

    def wait_s(self, now: float) -> float | None:
        """Seconds until a pass may start (0: one may start now); None: none is waiting."""
        if self.hurried or any(self.busy.get(key, 0) <= 1 for key in self.closing):
            return 0.0
        waiting = [due for key, due in self.due_at.items() if not self.busy.get(key)]
        if not waiting:
            return None
        return max(0.0, min(waiting) - now)

    def __len__(self) -> int:
        return len(self.due_at)
