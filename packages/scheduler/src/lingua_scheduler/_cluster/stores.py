"""Cluster-wide versions of the core's shared tables, kept in Redis.

Each is a second implementation of an interface the core already uses, and each keeps what
the core reads in memory, so the core's calls stay synchronous:

- `RedisCredentialStore` (a `CredentialStore`, like `sqlite_store`): node id -> SHA-256 of its
  secret in one hash. Bindings are read into the instance's mirror when a node registers
  (`fetch`), written with HSETNX (an id never rebinds, whichever instance bound it first).
- `ClusterBuckets` (a `TokenBuckets`): every use is applied to a bucket in Redis by a Lua
  script on Redis's clock, and the instance's bucket is set to the cluster's level from the
  reply; before a decision that must hold cluster-wide (a code guess) the shell reads the
  level first (`fetch`). Between two instances' uses of one key, each may let through what
  its own bucket holds until its next reply: at most one event per instance per round trip.
- `ClusterPairing` (a `PairingService`): a code is also a key with the code's TTL; any instance
  that is given the code takes it with GETDEL (`fetch`) before the core redeems it, so a code
  is redeemed once in the whole cluster.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from redis.asyncio.client import Pipeline

from .._core.pairing import Issued, PairingService
from .._core.ratelimit import TokenBuckets
from .link import Op, RedisLink

log = logging.getLogger("lingua.scheduler.cluster")

PREFIX = "lingua:"

BUCKET_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local mode = ARGV[4]
local v = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = burst
if v[1] then
  tokens = math.min(burst, tonumber(v[1]) + math.max(0, now - tonumber(v[2])) * rate)
end
if mode == 'take' then
  if tokens >= cost then tokens = tokens - cost end
elseif mode == 'charge' then
  tokens = math.max(0, tokens - cost)
end
if mode ~= 'peek' then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
  redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
end
return tostring(tokens)
"""
"""A token bucket in Redis: refill on Redis's clock (instances' clocks need not agree), then
peek, take (only if there) or charge (bottoming out at 0); returns the level as text. The key
expires once the bucket would be full again, so idle keys cost Redis nothing."""


class RedisCredentialStore:
    """Node credential bindings shared by every instance (`CredentialStore`)."""

    def __init__(self, link: RedisLink, prefix: str = PREFIX) -> None:
        self._link = link
        self._key = f"{prefix}credentials"
        self._digests: dict[str, str] = {}
        self._count = 0
        self.conflicts: list[str] = []
        """Node ids this instance bound while another instance bound them to another secret
        (a race of two first uses); the shell closes such a node's connection."""
        self.on_conflict: Callable[[str], None] = self.conflicts.append

    def lookup(self, node_id: str) -> str | None:
        return self._digests.get(node_id)

    def bind(self, node_id: str, digest: str) -> None:
        if node_id in self._digests:
            return
        self._digests[node_id] = digest
        self._count += 1
        self._link.submit(self._write(node_id, digest))

    def count(self) -> int:
        return max(self._count, len(self._digests))

    async def fetch(self, node_id: str) -> None:
        """Read `node_id`'s binding and the number of bindings into the mirror (before the
        core checks a registering node or redeems a pairing code for it)."""

        def add(pipe: Pipeline) -> int:
            pipe.hget(self._key, node_id)
            pipe.hlen(self._key)
            return 2

        digest, count = await self._link.call(add)
        if isinstance(digest, bytes):
            self._digests[node_id] = digest.decode()
        if isinstance(count, int):
            self._count = count

    async def republish(self) -> None:
        """After Redis came back (possibly empty): write every binding this instance knows."""
        for node_id, digest in list(self._digests.items()):
            self._link.submit(self._write(node_id, digest))

    def _write(self, node_id: str, digest: str) -> Op:
        def add(pipe: Pipeline) -> int:
            pipe.hsetnx(self._key, node_id, digest)
            pipe.hget(self._key, node_id)
            return 2

        def done(replies: list[Any] | BaseException) -> None:
            if isinstance(replies, BaseException):
                return
            bound = replies[1]
            if isinstance(bound, bytes) and bound.decode() != digest:
                log.warning("node %s was bound to another secret on another instance", node_id)
                self._digests[node_id] = bound.decode()
                self.on_conflict(node_id)

        return Op(add, done)


class ClusterBuckets(TokenBuckets):
    """Token buckets whose levels every instance shares (see the module docstring)."""

    def __init__(
        self,
        link: RedisLink,
        name: str,
        rate_per_s: float,
        burst: float,
        max_keys: int = 10_000,
        prefix: str = PREFIX,
    ) -> None:
        super().__init__(rate_per_s, burst, max_keys)
        self._link = link
        self._prefix = f"{prefix}rate:{name}:"
        self._clock: Callable[[], float] | None = None

    def use_clock(self, clock: Callable[[], float]) -> None:
        """The clock the core's `now` comes from, for levels that arrive with a reply."""
        self._clock = clock

    def take(self, key: str, now: float, cost: float = 1.0) -> bool:
        taken = super().take(key, now, cost)
        if taken:
            self._link.submit(self._apply(key, "take", cost))
        return taken

    def charge(self, key: str, now: float, cost: float = 1.0) -> None:
        super().charge(key, now, cost)
        self._link.submit(self._apply(key, "charge", cost))

    async def fetch(self, key: str, now: float) -> None:
        """Set this instance's bucket for `key` to the cluster's level."""
        replies = await self._link.call(self._add(key, "peek", 0.0))
        self._settle(key, replies, now)

    def _add(self, key: str, mode: str, cost: float) -> Callable[[Pipeline], int]:
        def add(pipe: Pipeline) -> int:
            # EVAL, not EVALSHA: a restarted Redis has forgotten every loaded script, and
            # Redis caches the compiled script by its text anyway.
            args = (repr(self.rate_per_s), repr(self.burst), repr(cost), mode)
            pipe.eval(BUCKET_SCRIPT, 1, self._prefix + key, *args)
            return 1

        return add

    def _apply(self, key: str, mode: str, cost: float) -> Op:
        def done(replies: list[Any] | BaseException) -> None:
            if not isinstance(replies, BaseException) and self._clock is not None:
                self._settle(key, replies, self._clock())

        return Op(self._add(key, mode, cost), done)

    def _settle(self, key: str, replies: list[Any], now: float) -> None:
        level = replies[0] if replies else None
        if isinstance(level, bytes | str):
            self.set_level(key, float(level), now)


class ClusterPairing(PairingService):
    """Pairing codes any instance can redeem, each once (see the module docstring)."""

    def attach(self, link: RedisLink, clock: Callable[[], float], prefix: str = PREFIX) -> None:
        """Called once after construction (a dataclass keeps its own fields)."""
        self._link = link
        self._clock = clock
        self._key = f"{prefix}pairing:"

    def issue(self, node_id: str, credential_digest: str | None, now: float) -> str:
        code = super().issue(node_id, credential_digest, now)
        self._link.submit(self._write(code, node_id, credential_digest))
        return code

    async def fetch(self, code: str, now: float) -> str | None:
        """Take `code` from Redis (no other instance can take it after this) and put it in
        this instance's table for the core to redeem; returns its node id, or None (and drops
        a local copy: it was redeemed elsewhere or expired)."""

        def add(pipe: Pipeline) -> int:
            pipe.getdel(self._key + code)
            return 1

        (raw,) = await self._link.call(add)
        if not isinstance(raw, bytes):
            issued = self.codes.pop(code, None)
            if issued is not None and self.by_node.get(issued.node_id) == code:
                del self.by_node[issued.node_id]
            return None
        entry = json.loads(raw)
        node_id, digest = str(entry["node_id"]), entry.get("digest")
        ttl_s = float(entry.get("ttl_s", 0.0))
        if code not in self.codes:
            self.codes[code] = Issued(node_id, digest, now + ttl_s)
            self._expiry.append((now + ttl_s, code))
        return node_id

    async def republish(self) -> None:
        """After Redis came back: write every live code this instance issued."""
        now = self._clock()
        for code, issued in list(self.codes.items()):
            if issued.expires_at > now:
                self._link.submit(
                    self._write(
                        code, issued.node_id, issued.credential_digest, issued.expires_at - now
                    )
                )

    def _write(self, code: str, node_id: str, digest: str | None, ttl_s: float | None = None) -> Op:
        ttl = self.ttl_s if ttl_s is None else ttl_s
        body = json.dumps({"node_id": node_id, "digest": digest, "ttl_s": ttl})

        def add(pipe: Pipeline) -> int:
            pipe.set(self._key + code, body, px=max(1, int(ttl * 1000)), nx=True)
            return 1

        def done(replies: list[Any] | BaseException) -> None:
            if not isinstance(replies, BaseException) and replies and replies[0] is None:
                log.warning("pairing code collided with another instance's; it pairs here only")

        return Op(add, done)
