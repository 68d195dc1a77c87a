"""Real scheduler processes (`python -m lingua_scheduler`) on free ports, for the cluster tests
that must kill an instance for real (SIGKILL) or check that instances share nothing but Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import urllib.request
from typing import Any

READY = re.compile(rb"ready on ws://[^:]+:(\d+)")
START_TIMEOUT_S = 30.0


class SchedulerProcess:
    def __init__(self, redis_url: str | None, log_level: str = "WARNING", **settings: Any) -> None:
        self.redis_url = redis_url
        self.log_level = log_level
        self.output: list[bytes] = []  # what it printed after it was ready (its log)
        self.settings = settings
        self.port = 0
        self._process: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None

    @property
    def session_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/session"

    @property
    def node_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/node"

    async def start(self) -> None:
        env = dict(os.environ)
        for name, value in self.settings.items():
            env[f"LINGUA_SCHEDULER_{name.upper()}"] = str(value)
        args = [
            sys.executable,
            "-m",
            "lingua_scheduler",
            "--port",
            "0",
            "--log-level",
            self.log_level,
        ]
        if self.redis_url:
            args += ["--redis", self.redis_url]
        self._process = await asyncio.create_subprocess_exec(
            *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        assert self._process.stdout is not None
        async with asyncio.timeout(START_TIMEOUT_S):
            while True:
                line = await self._process.stdout.readline()
                if not line:
                    raise RuntimeError("the scheduler exited before it was ready")
                found = READY.search(line)
                if found:
                    self.port = int(found.group(1))
                    break
        self._drain = asyncio.create_task(self._read_rest())

    async def _read_rest(self) -> None:
        """Keep reading its output so a full pipe never blocks it."""
        assert self._process is not None
        assert self._process.stdout is not None
        while line := await self._process.stdout.readline():
            self.output.append(line)

    def cluster_view(self) -> dict[str, Any]:
        """The public /api/v1/cluster (blocking: call it in a thread)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v1/cluster") as reply:
            data: dict[str, Any] = json.loads(reply.read())
            return data

    def operator_view(self, token: str) -> dict[str, Any]:
        """The full /api/v1/cluster, with this instance's `admin_token` (blocking: call it in
        a thread)."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/v1/cluster",
            headers={"Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(request) as reply:
            data: dict[str, Any] = json.loads(reply.read())
            return data

    async def wait_clients_gone(self, token: str, timeout_s: float = 10.0) -> None:
        """Until no session this instance holds has its client connected (it has handled
        their departure: what arrives for them now is held); needs `admin_token`."""
        async with asyncio.timeout(timeout_s):
            while True:
                view = await asyncio.to_thread(self.operator_view, token)
                if not any(s["connected"] for s in view["sessions"]):
                    return
                await asyncio.sleep(0.02)  # polling an HTTP view: there is no event to wait on

    async def ready_nodes(self) -> int:
        view = await asyncio.to_thread(self.cluster_view)
        return int(view["ready_nodes"])

    async def wait_ready_nodes(self, count: int, timeout_s: float = 10.0) -> None:
        """Until this instance sees `count` ready nodes (its own and other instances')."""
        async with asyncio.timeout(timeout_s):
            while True:
                if await self.ready_nodes() >= count:
                    return
                await asyncio.sleep(0.05)  # polling an HTTP view: there is no event to wait on

    async def kill(self) -> None:
        """SIGKILL: the instance dies without a word to anyone."""
        await self._end(signal.SIGKILL)

    async def stop(self) -> None:
        await self._end(signal.SIGTERM)

    async def _end(self, sig: int) -> None:
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self._process.send_signal(sig)
        try:
            async with asyncio.timeout(10):
                await self._process.wait()
        except TimeoutError:
            self._process.kill()
            await self._process.wait()
        if self._drain is not None:
            self._drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain
        self._process = None
