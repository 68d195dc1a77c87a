"""When a node's `job_ack` for another instance's job goes out: held a moment, so that an
answer ready at once crosses with it in one inbox entry.

A node whose result is ready at once sends `job_ack` and then `job_result` as two frames. Sent
as two inbox entries, the assigning instance's blocking read usually wakes for the ack alone and
needs one more read (a Redis round trip and a wake-up) before the result: on the utterance's
critical path. So the node's instance holds a relayed ack for at most `window_s`; the next
answer about the same job (its result, or a partial) takes the held ack with it, in order, in
one entry; an ack whose window ends first goes alone. Nothing else waits: a result, a partial
or a refusal is sent the moment it arrives, and the window (a few milliseconds) is far below
the assigning instance's `ack_timeout_s`, so a slow node's ack still arrives in time.

This module only decides (plain data, the clock passed in); `instance.py` sends what it returns
and arms one timer for `next_due()`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

MAX_HELD = 10_000
"""Acks held at once at most; beyond, the oldest goes at once (never dropped)."""


@dataclass(frozen=True, slots=True)
class HeldAck:
    """A node's `job_ack` (the JSON text it came as), for the instance that assigned the job."""

    job_id: str
    origin: str
    node_id: str
    text: bytes
    due: float


class AckHold:
    def __init__(self, window_s: float, max_held: int = MAX_HELD) -> None:
        if window_s < 0:
            raise ValueError("window_s must be >= 0")
        self.window_s = window_s
        self.max_held = max_held
        # Insertion order is due order: every ack is held for the same window.
        self._held: OrderedDict[str, HeldAck] = OrderedDict()

    def __len__(self) -> int:
        return len(self._held)

    def hold(
        self, job_id: str, origin: str, node_id: str, text: bytes, now: float
    ) -> list[HeldAck]:
        """Hold this ack. Returns the acks to send now, in order: an earlier ack still held for
        the same job (a node that acked twice), the oldest one when `max_held` are held, or
        this ack itself when the window is 0."""
        ack = HeldAck(job_id, origin, node_id, text, now + self.window_s)
        if self.window_s <= 0:
            return [ack]
        now_out: list[HeldAck] = []
        earlier = self._held.pop(job_id, None)
        if earlier is not None:
            now_out.append(earlier)
        while len(self._held) >= self.max_held:
            now_out.append(self._held.popitem(last=False)[1])
        self._held[job_id] = ack
        return now_out

    def take(self, job_id: str) -> HeldAck | None:
        """The ack held for `job_id` (no longer held), to send with the answer that came."""
        return self._held.pop(job_id, None)

    def due(self, now: float) -> list[HeldAck]:
        """The acks whose window has ended by `now`, oldest first (no longer held)."""
        out: list[HeldAck] = []
        while self._held:
            first = next(iter(self._held.values()))
            if first.due > now:
                break
            out.append(self._held.popitem(last=False)[1])
        return out

    def next_due(self) -> float | None:
        """When the oldest held ack must go; None when none is held."""
        if not self._held:
            return None
        return next(iter(self._held.values())).due

    def drain(self) -> list[HeldAck]:
        """Every held ack, oldest first (on a clean stop: they go out at once)."""
        out = list(self._held.values())
        self._held.clear()
        return out
