"""Fixtures the scheduler's cluster tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from lingua_scheduler.testing.redis_server import RedisServer, running_redis


@pytest.fixture
async def redis() -> AsyncIterator[RedisServer]:
    """A real redis-server on a free port, stopped after the test (the tests that use it skip
    where redis-server is not installed)."""
    async with running_redis() as server:
        yield server
