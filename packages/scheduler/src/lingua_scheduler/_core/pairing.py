"""Pairing codes: a node asks for a 6-digit code; a session presenting it is bound to that node.

Codes come from `secrets` (or the core's injected randomness), are unique among live codes,
single use, and expire after `ttl_s`. A node holds at most one live code (asking again
replaces it), so live codes never outnumber connected nodes. Codes are indexed both ways and
expire from a queue in issue order (every code lives `ttl_s`), so issuing or redeeming is
O(1), not a scan of all live codes.

A code remembers the credential (its digest) of the node that asked for it: a session pairs
with that credential, and a redeem fails if the node id is no longer bound to it. Guessing is
limited by the core per client address and in total (`trust.GuessGuard`).
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

CODE_DIGITS = 6


@dataclass(frozen=True, slots=True)
class Issued:
    node_id: str
    credential_digest: str | None
    expires_at: float


@dataclass(slots=True)
class PairingService:
    ttl_s: float = 300.0
    randbelow: Callable[[int], int] = secrets.randbelow
    """Where codes come from (`secrets` by default; the core passes its `Randomness`)."""
    codes: dict[str, Issued] = field(default_factory=dict)
    by_node: dict[str, str] = field(default_factory=dict)
    _expiry: deque[tuple[float, str]] = field(default_factory=deque)

    def issue(self, node_id: str, credential_digest: str | None, now: float) -> str:
        """A fresh code for `node_id`, replacing the node's previous one."""
        self._expire(now)
        previous = self.by_node.pop(node_id, None)
        if previous is not None:
            self.codes.pop(previous, None)
        while True:
            code = f"{self.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
            if code not in self.codes:
                break
        self.codes[code] = Issued(node_id, credential_digest, now + self.ttl_s)
        self.by_node[node_id] = code
        self._expiry.append((now + self.ttl_s, code))
        return code

    def redeem(self, code: str, now: float, digest_of: Callable[[str], str | None]) -> str | None:
        """The node id bound to `code` (consuming it), or None. `digest_of` gives a node id's
        current credential digest: the code is only good for the credential that asked."""
        self._expire(now)
        issued = self.codes.pop(code, None)
        if issued is None:
            return None
        if self.by_node.get(issued.node_id) == code:
            del self.by_node[issued.node_id]
        if issued.credential_digest != digest_of(issued.node_id):
            return None
        return issued.node_id

    def _expire(self, now: float) -> None:
        while self._expiry and self._expiry[0][0] <= now:
            _, code = self._expiry.popleft()
            issued = self.codes.get(code)
            if issued is not None and issued.expires_at <= now:
                del self.codes[code]
                if self.by_node.get(issued.node_id) == code:
                    del self.by_node[issued.node_id]
