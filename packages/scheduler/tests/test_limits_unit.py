"""The pure pieces behind the limits: token buckets, one log line per interval, and the
accept-failure handler (file descriptors exhausted) that logs once, not per retry."""

from __future__ import annotations

import asyncio
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lingua_scheduler import SchedulerServer, SchedulerSettings
from lingua_scheduler._core.credentials import MemoryCredentialStore, NodeCredentials, Verdict
from lingua_scheduler._core.limit_log import LimitLog
from lingua_scheduler._core.ratelimit import TokenBuckets


def test_a_bucket_allows_its_burst_then_refills_at_its_rate() -> None:
    buckets = TokenBuckets(rate_per_s=1.0, burst=3)
    assert [buckets.take("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert buckets.take("b", 0.0)  # keys are independent
    assert not buckets.allows("a", 0.5)
    assert buckets.allows("a", 1.0)


def test_charge_bottoms_out_and_allows_only_peeks() -> None:
    buckets = TokenBuckets(rate_per_s=0.1, burst=2)
    for _ in range(5):
        buckets.charge("a", 0.0)
    assert not buckets.allows("a", 0.0)
    assert buckets.allows("a", 10.0)
    assert buckets.allows("fresh", 0.0)
    assert len(buckets) == 1


def test_keys_are_bounded_and_new_keys_share_an_overflow_bucket_when_all_are_busy() -> None:
    buckets = TokenBuckets(rate_per_s=0.001, burst=1, max_keys=10)
    for i in range(10):
        buckets.charge(f"k{i}", 0.0)
    assert buckets.take("new-1", 0.0)  # the overflow bucket's one token
    assert not buckets.take("new-2", 0.0)  # shares it: an attacker with many keys is one key
    assert len(buckets) <= 11


def test_a_refilled_bucket_makes_room_for_a_new_key() -> None:
    buckets = TokenBuckets(rate_per_s=1.0, burst=1, max_keys=2)
    buckets.charge("old", 0.0)
    buckets.charge("other", 5.0)
    assert buckets.take("new", 5.0)
    assert len(buckets) == 2


def test_limit_log_writes_one_line_per_interval_with_the_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    limits = LimitLog(logging.getLogger("test.limits"), 60.0, lambda: now[0])
    caplog.set_level(logging.WARNING, "test.limits")
    assert limits.hit("connection limit")
    assert not any(limits.hit("connection limit") for _ in range(1000))
    now[0] = 61.0
    assert limits.hit("connection limit")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "limit: connection limit",
        "limit: connection limit (1000 more since the last line)",
    ]


async def test_accept_failures_log_one_line_per_interval_not_a_traceback_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = SchedulerServer(SchedulerSettings(host="127.0.0.1", port=0))
    await server.start()
    try:
        loop = asyncio.get_running_loop()
        caplog.set_level(logging.WARNING)
        caplog.clear()
        for _ in range(100):  # what asyncio reports on each retry while out of descriptors
            loop.call_exception_handler(
                {
                    "message": "socket.accept() out of system resource",
                    "exception": OSError(24, "Too many open files"),
                }
            )
        assert len(caplog.records) == 1
        assert caplog.records[0].exc_info is None
        assert "accept() failed" in caplog.records[0].getMessage()
    finally:
        await server.stop()


def test_credentials_bind_once_and_compare_by_digest() -> None:
    store = MemoryCredentialStore()
    creds = NodeCredentials(store, max_nodes=2)
    first = creds.check("a", None)
    assert first.verdict is Verdict.FIRST_USE
    assert first.issued is not None
    assert store.count() == 0  # checking binds nothing
    assert creds.accept(first) == first.issued
    assert store.lookup("a") != first.issued  # only the digest is kept
    assert creds.check("a", first.issued).verdict is Verdict.KNOWN
    assert creds.check("a", None).verdict is Verdict.MISSING
    assert creds.check("a", "x" * 43).verdict is Verdict.WRONG
    creds.accept(creds.check("b", "y" * 43))
    assert creds.check("c", "z" * 43).verdict is Verdict.FULL


def test_ipv6_clients_are_counted_per_64_and_mapped_ipv4_as_ipv4() -> None:
    from lingua_scheduler._server import _limit_key

    assert _limit_key("2001:db8:1:2:aaaa::1") == _limit_key("2001:db8:1:2:bbbb::9")
    assert _limit_key("2001:db8:1:2::1") != _limit_key("2001:db8:1:3::1")
    assert _limit_key("::ffff:198.51.100.7") == "198.51.100.7" == _limit_key("198.51.100.7")
    assert _limit_key("not an address") == "not an address"


Step = tuple[int, float, bool]
steps_of = st.lists(
    st.tuples(st.integers(0, 30), st.floats(0, 5), st.booleans()), min_size=1, max_size=200
)


def _run(buckets: TokenBuckets, steps: list[Step], keys: int) -> tuple[dict[str, int], float]:
    now, taken = 0.0, {}
    for key_number, dt, take in steps:
        now += dt
        key = f"k{key_number % keys}"
        if take:
            if buckets.take(key, now):
                taken[key] = taken.get(key, 0) + 1
        else:
            buckets.charge(key, now)
        assert len(buckets) <= buckets.max_keys + 1  # + the one shared overflow bucket
    return taken, now


@settings(max_examples=200, deadline=None)
@given(steps=steps_of)
def test_a_key_never_gets_more_than_its_burst_plus_the_refill(steps: list[Step]) -> None:
    """Forgetting a bucket (only a full one) must not hand out tokens it did not have."""
    buckets = TokenBuckets(rate_per_s=0.5, burst=3, max_keys=2)
    taken, now = _run(buckets, steps, keys=2)
    for count in taken.values():
        assert count <= 3 + 0.5 * now + 1e-9


@settings(max_examples=200, deadline=None)
@given(steps=steps_of)
def test_many_keys_stay_within_max_keys(steps: list[Step]) -> None:
    _run(TokenBuckets(rate_per_s=0.5, burst=3, max_keys=8), steps, keys=31)
