"""What the core knows about who a peer is and how much it may try: node credentials, the
network address behind each connection, and the rate limits on guesses and node chatter.

Wrong room and pairing codes are limited per client address *and* in total, not per
connection, so reconnecting does not reset the count and many addresses together cannot
sweep the code space either. Heartbeats and pairing-code requests are limited per node id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from .._settings import SchedulerSettings
from .credentials import CredentialStore, MemoryCredentialStore, NodeCredentials, new_secret
from .limit_log import LimitLog
from .ratelimit import TokenBuckets

TOTAL = "*"


@dataclass(slots=True)
class GuessGuard:
    """Wrong codes per client address and in total (token buckets refilled per minute)."""

    per_address: TokenBuckets
    total: TokenBuckets

    def may_guess(self, address: str, now: float) -> bool:
        return self.per_address.allows(address, now) and self.total.allows(TOTAL, now)

    def wrong(self, address: str, now: float) -> None:
        self.per_address.charge(address, now)
        self.total.charge(TOTAL, now)


def _per_min(count: float, max_keys: int) -> TokenBuckets:
    return TokenBuckets(count / 60.0, count, max_keys)


class TrustState:
    def __init__(
        self,
        s: SchedulerSettings,
        store: CredentialStore | None = None,
        secret: Callable[[], str] = new_secret,
    ) -> None:
        self.credentials = NodeCredentials(
            store or MemoryCredentialStore(), s.max_node_credentials, secret
        )
        self.addresses: dict[str, str] = {}
        self.guesses = GuessGuard(
            _per_min(s.wrong_codes_per_min, s.rate_limit_max_keys),
            _per_min(s.wrong_codes_per_min_total, 1),
        )
        self.heartbeats = TokenBuckets(
            s.node_heartbeats_per_s, s.node_heartbeat_burst, s.rate_limit_max_keys
        )
        self.pairing_requests = _per_min(s.pairing_requests_per_min, s.rate_limit_max_keys)
        self.new_node_ids = TokenBuckets(
            s.new_node_ids_per_hour / 3600.0, s.new_node_ids_per_hour, s.rate_limit_max_keys
        )
        # Refusals a peer can cause at will are logged once per interval (the event's `now`).
        self.limits = LimitLog(
            logging.getLogger("lingua.scheduler"), s.limit_log_interval_s, _no_clock
        )

    def peer_connected(self, conn_id: str, address: str) -> None:
        """The shell tells the core which network address a connection comes from."""
        self.addresses[conn_id] = address

    def peer_gone(self, conn_id: str) -> None:
        self.addresses.pop(conn_id, None)

    def address_of(self, conn_id: str) -> str:
        """The peer's address; a connection the shell did not describe counts as its own."""
        return self.addresses.get(conn_id, conn_id)


def _no_clock() -> float:
    raise RuntimeError("the core passes `now` to LimitLog.hit")
