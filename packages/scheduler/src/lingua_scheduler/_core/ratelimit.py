"""Token buckets keyed by string: how often a peer address, a node or everyone together may do
something (guess a code, send a heartbeat, ask for a pairing code).

Pure: the caller passes `now` (monotonic seconds) into every call. The number of buckets is
bounded: a bucket that has refilled to full is the same as no bucket and may be forgotten;
when `max_keys` buckets are all in use, a new key shares one overflow bucket, so a peer that
invents keys (many source addresses) is limited together instead of growing memory.
`RateLimiter` is the interface a cluster-wide (e.g. Redis) implementation would provide.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

OVERFLOW_KEY = "\x00overflow"


class RateLimiter(Protocol):
    def allows(self, key: str, now: float, cost: float = 1.0) -> bool:
        """Whether `key` has `cost` tokens now (nothing is taken)."""
        ...

    def take(self, key: str, now: float, cost: float = 1.0) -> bool:
        """Take `cost` tokens from `key`'s bucket if it has them; False (nothing taken) if not."""
        ...

    def charge(self, key: str, now: float, cost: float = 1.0) -> None:
        """Take `cost` tokens whether or not they are there (the bucket bottoms out at 0)."""
        ...


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """`burst` tokens per key, refilled at `rate_per_s`; at most `max_keys` keys held."""

    def __init__(self, rate_per_s: float, burst: float, max_keys: int = 10_000) -> None:
        if rate_per_s <= 0 or burst <= 0 or max_keys < 1:
            raise ValueError("rate_per_s, burst and max_keys must be positive")
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def allows(self, key: str, now: float, cost: float = 1.0) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets.get(OVERFLOW_KEY) if self._full() else None
        return bucket is None or self._level(bucket, now) >= cost

    def take(self, key: str, now: float, cost: float = 1.0) -> bool:
        bucket = self._bucket(key, now)
        if bucket.tokens < cost:
            return False
        bucket.tokens -= cost
        return True

    def charge(self, key: str, now: float, cost: float = 1.0) -> None:
        bucket = self._bucket(key, now)
        bucket.tokens = max(0.0, bucket.tokens - cost)

    def set_level(self, key: str, tokens: float, now: float) -> None:
        """Overwrite `key`'s level (clamped to 0..burst): a cluster-wide limiter reconciles
        this instance's bucket with what every instance together has used."""
        bucket = self._bucket(key, now)
        bucket.tokens = min(self.burst, max(0.0, tokens))

    def _level(self, bucket: _Bucket, now: float) -> float:
        return min(self.burst, bucket.tokens + max(0.0, now - bucket.at) * self.rate_per_s)

    def _full(self) -> bool:
        return len(self._buckets) >= self.max_keys

    def _bucket(self, key: str, now: float) -> _Bucket:
        """The refilled bucket for `key`, created (or the shared overflow one) as needed."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if self._full():
                self._forget_oldest_if_refilled(now)
            if self._full():
                key = OVERFLOW_KEY
                bucket = self._buckets.get(key)
            if bucket is None:
                bucket = _Bucket(self.burst, now)
                self._buckets[key] = bucket
        bucket.tokens = self._level(bucket, now)
        bucket.at = now
        self._buckets.move_to_end(key)
        return bucket

    def _forget_oldest_if_refilled(self, now: float) -> None:
        oldest = next(iter(self._buckets), None)
        if oldest is not None and self._level(self._buckets[oldest], now) >= self.burst:
            del self._buckets[oldest]
