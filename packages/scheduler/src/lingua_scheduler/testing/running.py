"""A real `SchedulerServer` on a free port with helpers that open scripted peers on it: for
integration and load tests (real sockets, test-double peers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from .._server import SchedulerServer
from .._settings import SchedulerSettings
from .scripted import ScriptedClient, ScriptedNode


class Running:
    """A started server and its URLs."""

    def __init__(self, server: SchedulerServer) -> None:
        self.server = server
        self.node_url = f"ws://127.0.0.1:{server.port}/ws/node"
        self.session_url = f"ws://127.0.0.1:{server.port}/ws/session"
        self.http = f"http://127.0.0.1:{server.port}"

    async def node(self, node_id: str, **kw: Any) -> ScriptedNode:
        node = ScriptedNode(self.node_url, node_id, **kw)
        await node.start()
        return node

    async def client(self, src: str = "en", tgt: str = "zh", **kw: Any) -> ScriptedClient:
        client = ScriptedClient(self.session_url, src, tgt, **kw)
        await client.start()
        return client


@asynccontextmanager
async def running_scheduler(**settings: Any) -> AsyncIterator[Running]:
    """A scheduler on 127.0.0.1 and a free port with `settings`, stopped on exit."""
    server = SchedulerServer(SchedulerSettings(host="127.0.0.1", port=0, **settings))
    await server.start()
    try:
        yield Running(server)
    finally:
        await server.stop()


@asynccontextmanager
async def running_instances(count: int, **settings: Any) -> AsyncIterator[list[Running]]:
    """`count` schedulers with the same `settings` (e.g. one `redis_url`: instances of one
    cluster), stopped on exit."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(running_scheduler(**settings)) for _ in range(count)]
