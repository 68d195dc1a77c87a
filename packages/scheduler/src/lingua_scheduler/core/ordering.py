"""Per-session result sequencing: results leave in `utterance_index` order.

A result for index i is held until every index below it has ended. A gap at the head of the
line that the scheduler never received (a client that skipped an index, or an utterance lost
on the way) waits at most `gap_timeout_s`, then becomes a `missing_result` so later results
flow. An index that was received is not a gap: its job is running and the job layer
guarantees it ends (result, or an error after timeouts and retries), so a long utterance is
never turned into a `missing_result` just because a shorter one after it finished first.

The last delivered messages are kept so that a client that resends an utterance after a
reconnect gets its result again instead of silence.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from lingua_protocol import Message

REPLAY_KEEP = 64


class Acceptance(Enum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    DELIVERED = "delivered"


@dataclass(slots=True)
class ResultSequencer:
    gap_timeout_s: float
    next_index: int | None = None
    accepted: set[int] = field(default_factory=set)
    ready: dict[int, Message] = field(default_factory=dict)
    gap_since: float | None = None
    delivered: OrderedDict[int, Message] = field(default_factory=OrderedDict)

    def accept(self, index: int) -> Acceptance:
        """Record a received utterance index."""
        if self.next_index is None:
            self.next_index = index
        if index in self.accepted:
            return Acceptance.IN_PROGRESS
        if index < self.next_index:
            return Acceptance.DELIVERED
        self.accepted.add(index)
        return Acceptance.NEW

    def replay(self, index: int) -> Message | None:
        """The message already delivered for `index`, if still remembered."""
        return self.delivered.get(index)

    def finish(self, index: int, message: Message, now: float) -> list[Message]:
        """Record the one final message for `index`; returns what may now be delivered."""
        if index not in self.accepted or index in self.ready:
            return []
        self.ready[index] = message
        return self._drain(now)

    def pending(self) -> int:
        """Received utterances whose final message has not been delivered yet."""
        return len(self.accepted)

    def gap_deadline(self) -> float | None:
        if self.ready and self.gap_since is not None and self.next_index not in self.accepted:
            return self.gap_since + self.gap_timeout_s
        return None

    def skip_gap(self, now: float, make_missing: Callable[[int], Message]) -> list[Message]:
        """Give up on the head-of-line gap: a missing message for each index up to the next
        one that is in flight or ready, then whatever can be delivered."""
        out: list[Message] = []
        assert self.next_index is not None
        while self.next_index not in self.ready:
            if self.next_index in self.accepted:
                break
            self.accepted.discard(self.next_index)
            out.append(self._remember(self.next_index, make_missing(self.next_index)))
            self.next_index += 1
        out.extend(self._drain(now))
        return out

    def _remember(self, index: int, message: Message) -> Message:
        self.delivered[index] = message
        while len(self.delivered) > REPLAY_KEEP:
            self.delivered.popitem(last=False)
        return message

    def _drain(self, now: float) -> list[Message]:
        out: list[Message] = []
        while self.next_index is not None and self.next_index in self.ready:
            index = self.next_index
            out.append(self._remember(index, self.ready.pop(index)))
            self.accepted.discard(index)
            self.next_index = index + 1
        if not self.ready:
            self.gap_since = None
        elif out or self.gap_since is None or self.next_index in self.accepted:
            self.gap_since = now  # the wait for a missing index starts when it is the head
        return out
