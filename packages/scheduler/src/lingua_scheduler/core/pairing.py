"""Pairing codes: a node asks for a 6-digit code; a session presenting it is bound to that node.

Codes come from `secrets`, are unique among live codes, single use, and expire. Wrong codes are
counted per connection: more than `max_failures_per_min` in a minute is rate limited.
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class PairingService:
    ttl_s: float = 300.0
    max_failures_per_min: int = 5
    codes: dict[str, tuple[str, float]] = field(default_factory=dict)
    failures: dict[str, deque[float]] = field(default_factory=dict)

    def issue(self, node_id: str, now: float) -> str:
        self._expire(now)
        while True:
            code = f"{secrets.randbelow(1_000_000):06d}"
            if code not in self.codes:
                self.codes[code] = (node_id, now + self.ttl_s)
                return code

    def rate_limited(self, conn_id: str, now: float) -> bool:
        window = self.failures.get(conn_id)
        if window is None:
            return False
        while window and now - window[0] > 60.0:
            window.popleft()
        return len(window) >= self.max_failures_per_min

    def redeem(self, code: str, conn_id: str, now: float) -> str | None:
        """The node id bound to `code` (consuming it), or None (a failure is counted)."""
        self._expire(now)
        entry = self.codes.pop(code, None)
        if entry is None:
            self.failures.setdefault(conn_id, deque()).append(now)
            return None
        return entry[0]

    def forget_conn(self, conn_id: str) -> None:
        self.failures.pop(conn_id, None)

    def _expire(self, now: float) -> None:
        for code in [c for c, (_, until) in self.codes.items() if until <= now]:
            del self.codes[code]
