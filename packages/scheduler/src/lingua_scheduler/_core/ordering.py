"""Per-session result sequencing: results leave in `utterance_index` order.

A result for index i is held until every index below it has ended. A gap at the head of the
line that the scheduler never received (a client that skipped an index, or an utterance lost
on the way) waits at most `gap_timeout_s`, then becomes a `missing_result` so later results
flow. An index that was received is not a gap: its job is running and the job layer
guarantees it ends (result, or an error after timeouts and retries), so a long utterance is
never turned into a `missing_result` just because a shorter one after it finished first.

Every accepted index lies within `window` of the head of the line (the caller refuses others
before accepting them), so skipping a gap emits at most `window` messages, however large the
indexes a client sends: the work per gap is bounded by a constant, not by the gap.

The sequencer also keeps the session's flow-control account (how many utterances and how many
audio bytes are accepted and not yet answered) and the replay buffer (the last delivered
messages, bounded in count and in bytes) so that a client that resends an utterance after a
reconnect gets its result again instead of silence.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from lingua_protocol import Message

from .budget import message_bytes, without_audio

REPLAY_KEEP = 64
"""At most this many delivered messages are kept for replay (and at most `replay_bytes`)."""


class Acceptance(Enum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    DELIVERED = "delivered"


@dataclass(slots=True)
class ResultSequencer:
    gap_timeout_s: float
    replay_bytes: int = 2 * 1024 * 1024
    hold_bytes: int = 16 * 1024 * 1024
    next_index: int | None = None
    accepted: dict[int, int] = field(default_factory=dict)
    """Accepted, not yet delivered index -> the audio bytes it holds against the session."""
    in_flight_bytes: int = 0
    ready: dict[int, tuple[Message, int]] = field(default_factory=dict)
    """Final messages waiting for a lower index, with their size (`message_bytes`)."""
    ready_bytes: int = 0
    gap_since: float | None = None
    delivered: OrderedDict[int, tuple[Message, int]] = field(default_factory=OrderedDict)
    delivered_bytes: int = 0

    def classify(self, index: int) -> Acceptance:
        """What `index` is to this session, without changing anything."""
        if index in self.accepted:
            return Acceptance.IN_PROGRESS
        if self.next_index is not None and index < self.next_index:
            return Acceptance.DELIVERED
        return Acceptance.NEW

    def ahead_of_head(self, index: int) -> int:
        """How far `index` runs ahead of the next index this session delivers (0: it is next)."""
        return 0 if self.next_index is None else index - self.next_index

    def accept(self, index: int, audio_bytes: int = 0) -> Acceptance:
        """Record a received utterance index (call `classify` first to validate)."""
        state = self.classify(index)
        if state is Acceptance.NEW:
            self.accept_new(index, audio_bytes)
        return state

    def accept_new(self, index: int, audio_bytes: int) -> None:
        """`accept` for an index the caller has just classified NEW."""
        if self.next_index is None:
            self.next_index = index
        self.accepted[index] = audio_bytes
        self.in_flight_bytes += audio_bytes

    def grow(self, index: int, audio_bytes: int) -> None:
        """A streamed utterance's audio grew: its bytes count against the window as they come."""
        if index in self.accepted:
            self.accepted[index] += audio_bytes
            self.in_flight_bytes += audio_bytes

    def replay(self, index: int) -> Message | None:
        """The message already delivered for `index`, if still remembered."""
        kept = self.delivered.get(index)
        return kept[0] if kept is not None else None

    def finish(self, index: int, message: Message, now: float) -> list[Message]:
        """Record the one final message for `index`; returns what may now be delivered.

        A result whose audio would take the session's held results past `hold_bytes` is kept
        without its audio (`tts_audio_dropped`), never dropped."""
        if index not in self.accepted or index in self.ready:
            return []
        size = message_bytes(message)
        if self.ready_bytes + size > self.hold_bytes:
            message = without_audio(message, "hold_budget")
            size = message_bytes(message)
        self.ready[index] = (message, size)
        self.ready_bytes += size
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
        one that is in flight or ready (at most the window), then whatever can be delivered."""
        out: list[Message] = []
        assert self.next_index is not None
        while self.next_index not in self.ready:
            if self.next_index in self.accepted:
                break
            missing = make_missing(self.next_index)
            out.append(self._remember(self.next_index, missing, message_bytes(missing)))
            self.next_index += 1
        out.extend(self._drain(now))
        return out

    def restore(self, index: int, message: Message) -> None:
        """`message` was delivered for `index` by another instance (a session rebuilt from a
        cluster's shared state): remember it for replay and move the head past it."""
        self._remember(index, message, message_bytes(message))
        if self.next_index is None or self.next_index <= index:
            self.next_index = index + 1

    def _remember(self, index: int, message: Message, size: int) -> Message:
        """Keep `message` (of `size`, see `message_bytes`) for replay; returns it."""
        if size > self.replay_bytes:
            # Too big to keep whole: keep what a resend needs (the text), say the audio is gone.
            kept = without_audio(message, "replay_budget")
            size = message_bytes(kept)
        else:
            kept = message
        self.delivered[index] = (kept, size)
        self.delivered_bytes += size
        while len(self.delivered) > REPLAY_KEEP or self.delivered_bytes > self.replay_bytes:
            _, (_, old) = self.delivered.popitem(last=False)
            self.delivered_bytes -= old
        return message

    def _drain(self, now: float) -> list[Message]:
        out: list[Message] = []
        while self.next_index is not None and self.next_index in self.ready:
            index = self.next_index
            message, size = self.ready.pop(index)
            self.ready_bytes -= size
            out.append(self._remember(index, message, size))
            self.in_flight_bytes -= self.accepted.pop(index, 0)
            self.next_index = index + 1
        if not self.ready:
            self.gap_since = None
        elif out or self.gap_since is None or self.next_index in self.accepted:
            self.gap_since = now  # the wait for a missing index starts when it is the head
        return out
