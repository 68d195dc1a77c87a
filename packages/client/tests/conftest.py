from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from lingua_scheduler import SchedulerServer, SchedulerSettings

from .client_support import SPEECH, Sched


@pytest.fixture(scope="session")
def sentences() -> list[dict[str, str]]:
    data: list[dict[str, str]] = json.loads((SPEECH / "sentences.json").read_text())
    return data


@pytest.fixture
async def sched() -> AsyncIterator[Sched]:
    server = SchedulerServer(SchedulerSettings(host="127.0.0.1", port=0, sticky_nodes=False))
    await server.start()
    running = Sched(server)
    try:
        yield running
    finally:
        for n in running.nodes:
            await n.close()
        await server.stop()
