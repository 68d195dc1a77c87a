"""What one scheduler instance adds to join a cluster: the Redis link, the shared tables it
gives the core, and the two hooks the shell calls around the core for the few messages that
need the cluster (`prepares`: read shared state first; `settles`: write it before the reply
goes out). Every other message, utterances included, goes to the core exactly as in a single
scheduler, with no Redis call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from lingua_protocol import Message, NodeRegister, PairingCodeRequest, RoomJoin, SessionInit

from ..core.tables import CoreTables
from ..core.trust import TOTAL, GuessGuard
from ..settings import SchedulerSettings
from .link import ClusterUnavailable, RedisLink
from .stores import ClusterBuckets, ClusterPairing, RedisCredentialStore

log = logging.getLogger("lingua.scheduler.cluster")

__all__ = ["Cluster", "ClusterUnavailable"]


class Cluster:
    def __init__(self, settings: SchedulerSettings, clock: Callable[[], float]) -> None:
        if not settings.redis_url:
            raise ValueError("a cluster needs redis_url")
        self.settings = settings
        self.clock = clock
        self.link = RedisLink(settings.redis_url)
        self.credentials = RedisCredentialStore(self.link)
        self.pairing: ClusterPairing | None = None
        self.guesses: GuessGuard | None = None
        self.new_node_ids: ClusterBuckets | None = None
        self._buckets: list[ClusterBuckets] = []

    @property
    def up(self) -> bool:
        """Redis answers: new sessions and node registrations are taken."""
        return self.link.up

    async def start(self) -> None:
        """Connect to Redis; raises `ClusterUnavailable` when it does not answer (an instance
        does not start without its cluster)."""
        await self.link.start()
        self.link.on_reconnect.append(self.credentials.republish)
        if self.pairing is not None:
            self.link.on_reconnect.append(self.pairing.republish)
        for buckets in self._buckets:
            buckets.use_clock(self.clock)

    async def close(self) -> None:
        await self.link.close()

    # ------------------------------------------------------------------ the core's tables

    def customize(self, tables: CoreTables) -> None:
        """Give the core cluster-wide pairing and rate limits (credentials come in through
        `SchedulerCore(credentials=...)`)."""
        s = tables.config
        keys = s.rate_limit_max_keys
        old = tables.pairing
        pairing = ClusterPairing(old.ttl_s, randbelow=old.randbelow)
        pairing.attach(self.link, self.clock)
        tables.pairing = self.pairing = pairing
        trust = tables.trust
        per_min = s.wrong_codes_per_min
        total = s.wrong_codes_per_min_total
        trust.guesses = self.guesses = GuessGuard(
            self._shared("guess", per_min / 60.0, per_min, keys),
            self._shared("guess_total", total / 60.0, total, 1),
        )
        trust.heartbeats = self._shared(
            "heartbeat", s.node_heartbeats_per_s, s.node_heartbeat_burst, keys
        )
        requests = s.pairing_requests_per_min
        trust.pairing_requests = self._shared("pairing_request", requests / 60.0, requests, keys)
        ids = s.new_node_ids_per_hour
        trust.new_node_ids = self.new_node_ids = self._shared(
            "new_node_id", ids / 3600.0, ids, keys
        )

    def _shared(self, name: str, rate: float, burst: float, max_keys: int) -> ClusterBuckets:
        buckets = ClusterBuckets(self.link, name, rate, burst, max_keys)
        self._buckets.append(buckets)
        return buckets

    # ------------------------------------------------------------------ shell hooks

    @staticmethod
    def prepares(message: Message) -> bool:
        """Whether the shell must `prepare` before the core sees `message`."""
        return isinstance(message, NodeRegister | RoomJoin | PairingCodeRequest) or (
            isinstance(message, SessionInit) and bool(message.pairing_code)
        )

    @staticmethod
    def settles(message: Message) -> bool:
        """Whether the core's answer to `message` waits for its Redis writes (so a client that
        reads the answer, then goes to another instance, finds them there)."""
        return isinstance(message, PairingCodeRequest | RoomJoin) or (
            isinstance(message, SessionInit) and bool(message.pairing_code)
        )

    async def prepare(self, message: Message, address: str, registered: bool, now: float) -> None:
        """Read into this instance what the core will decide `message` on. Raises
        `ClusterUnavailable` when Redis does not answer."""
        assert self.guesses is not None
        assert self.pairing is not None
        assert self.new_node_ids is not None
        if isinstance(message, SessionInit | RoomJoin):
            await self._fetch_guesses(address, now)
        if isinstance(message, SessionInit) and message.pairing_code:
            node_id = await self.pairing.fetch(message.pairing_code, now)
            if node_id is not None:
                await self.credentials.fetch(node_id)
        elif isinstance(message, NodeRegister) and not registered:
            if message.node_id:
                await self.credentials.fetch(message.node_id)
            await self.new_node_ids.fetch(address, now)

    async def _fetch_guesses(self, address: str, now: float) -> None:
        assert self.guesses is not None
        per_address, total = self.guesses.per_address, self.guesses.total
        assert isinstance(per_address, ClusterBuckets)
        assert isinstance(total, ClusterBuckets)
        await per_address.fetch(address, now)
        await total.fetch(TOTAL, now)

    async def settle(self) -> None:
        """Wait until this instance's writes so far are in Redis."""
        await self.link.flush()
