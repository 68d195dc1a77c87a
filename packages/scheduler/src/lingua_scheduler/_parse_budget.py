"""How much of the event loop one peer's messages may take to parse.

Parsing is the one cost a peer controls before any rule can look at what it sent: a node's
heartbeat at the protocol's caps (4,096 language pairs) takes ~9 ms to validate, so one node
sending them back to back would hold the loop that every other session and node shares, and
the heartbeat rate limit only applies once the message is parsed. Each connection therefore
gets a token bucket of parse time: every parse spends what it took, the bucket refills at
`rate_ms_per_s`, and a connection in debt has its next message left unparsed until it has
paid it back (the frames after it wait in websockets' queue, then in its own TCP buffer;
nothing is dropped, and other peers are not delayed).
Ordinary traffic never meets it: a 3 s utterance parses in ~0.1 ms, a heartbeat in ~0.05 ms.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class ParseBudget:
    rate_ms_per_s: float
    burst_ms: float
    tokens_ms: float = 0.0
    updated_at: float | None = None

    def __post_init__(self) -> None:
        self.tokens_ms = self.burst_ms

    def spend(self, cost_s: float) -> None:
        """Charge one parse that took `cost_s` seconds of the loop. No clock is read here (it
        runs for every message): the bucket refills lazily in `wait_s`, which the reader calls
        only once the tokens are spent."""
        self.tokens_ms -= cost_s * 1000.0

    def wait_s(self, now: float) -> float:
        """How long to leave this connection unread before its next message (0: read now)."""
        self._refill(now)
        if self.tokens_ms >= 0:
            return 0.0
        return -self.tokens_ms / self.rate_ms_per_s

    def _refill(self, now: float) -> None:
        if self.updated_at is not None:
            elapsed = max(0.0, now - self.updated_at)
            self.tokens_ms = min(self.burst_ms, self.tokens_ms + elapsed * self.rate_ms_per_s)
        self.updated_at = now
