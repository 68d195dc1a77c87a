"""Which stream gets the next free inference worker: a round robin of the streams that are due.

Plain state with the time passed in, no thread and no clock of its own (tested in
`tests/test_stream_rotation.py`). Rules:

- A stream is due for a pass one interval after its last pass started (its first pass once
  `first_update` of audio is in), and at most one pass of a stream runs at a time.
- A stream whose utterance ended (its final chunk arrived) comes first: its final pass is
  what the speaker waits for, and it happens once per utterance.
- Among the due streams, the one served longest ago goes first and goes to the back of the
  line when it starts: every due stream gets a worker before any gets a second one, so a
  stream whose passes are slow (a long buffer) delays the others by at most one pass each
  round and can never take the workers from them.
- A stream whose speaker just paused (`pause.py`) is due at once (after its running pass,
  if one runs): that pass hears the end of what was said, and its hypothesis can then be
  the final one.
- When more passes are due than the workers can run, passes start late and each stream's
  interval stretches evenly: that stretch is what the node's stream capacity is sized
  against (`concurrency.stream_capacity`).
"""

from __future__ import annotations

from collections import OrderedDict
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
    busy: set[K] = field(default_factory=set)
    hurried: set[K] = field(default_factory=set)
    """Busy streams that are due again as soon as their running pass ends."""

    def add(self, key: K, interval_s: float, first_due: float) -> None:
        self.due_at[key] = first_due
        self.interval_s[key] = interval_s

    def remove(self, key: K) -> None:
        self.due_at.pop(key, None)
        self.interval_s.pop(key, None)
        self.busy.discard(key)
        self.hurried.discard(key)
        if key in self.closing:
            self.closing.remove(key)

    def close(self, key: K) -> None:
        """The utterance ended: the stream's final pass is due at once."""
        if key in self.due_at and key not in self.closing:
            self.closing.append(key)

    def next(self, now: float) -> tuple[K, bool] | None:
        """The stream to run now and whether it is its final pass; None when none is due.
        The caller must report the pass's end with `done` (or `remove` the stream)."""
        for key in self.closing:
            if key not in self.busy:
                self.closing.remove(key)
                self.busy.add(key)
                return key, True
        for key, due in self.due_at.items():
            if key not in self.busy and key not in self.closing and due <= now:
                self.busy.add(key)
                self.due_at.move_to_end(key)
                return key, False
        return None

    def hurry(self, key: K, now: float) -> None:
        """The speaker paused: a pass is due now (or as soon as the running one ends)."""
        if key not in self.due_at:
            return
        if key in self.busy:
            self.hurried.add(key)
        else:
            self.due_at[key] = min(self.due_at[key], now)

    def done(self, key: K, started: float, interval_s: float | None = None) -> None:
        """The pass that started at `started` ended: next due one interval (the stream's,
        or `interval_s`) after it began (at once when it was hurried meanwhile)."""
        self.busy.discard(key)
        if key in self.due_at:
            self.due_at[key] = started + (interval_s or self.interval_s[key])
            if key in self.hurried:
                self.hurried.discard(key)
                self.due_at[key] = started

    def postpone(self, key: K, now: float) -> None:
        """Nothing new to hear: check again one interval from now (no pass ran)."""
        self.done(key, now)

    def wait_s(self, now: float) -> float | None:
        """Seconds until a stream that is not busy is due (0: one is due now); None: none."""
        if any(key not in self.busy for key in self.closing):
            return 0.0
        waiting = [due for key, due in self.due_at.items() if key not in self.busy]
        if not waiting:
            return None
        return max(0.0, min(waiting) - now)

    def __len__(self) -> int:
        return len(self.due_at)
