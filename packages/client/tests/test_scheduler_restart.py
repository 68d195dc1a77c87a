"""A real scheduler process is killed and restarted mid-session: the client opens a new
session by itself and every utterance, unanswered or said during the outage, ends in its
result under its own caption index (over real sockets, a scripted test-double node)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lingua_client._local_cluster import Proc, free_port, wait_http
from lingua_protocol import TranslationResult
from lingua_scheduler.testing import ScriptedNode

from .client_support import SILENCE, Reports, first_answered, reconnecting_session


class SchedulerProcess:
    """`python -m lingua_scheduler` on a fixed port, restartable."""

    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> None:
        with self.log.open("ab") as handle:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "lingua_scheduler", "--port", str(self.port)],
                stdout=handle,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        health = f"http://127.0.0.1:{self.port}/health"
        wait_http(Proc("scheduler", self.proc, self.log), health, timeout_s)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


class Gate:
    """A TCP relay in front of the scheduler that can refuse new connections, so the test
    decides when the client may come back (after the new node has registered)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.open = True
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[SchedulerProcess]:
    proc = SchedulerProcess(free_port(), tmp_path / "scheduler.log")
    proc.start()
    try:
        yield proc
    finally:
        proc.kill()


async def test_a_scheduler_restart_opens_a_new_session_and_loses_nothing(
    scheduler: SchedulerProcess,
) -> None:
    url = f"ws://127.0.0.1:{scheduler.port}"
    pairs = [("en", "en")]
    node = ScriptedNode(f"{url}/ws/node", "n1", pairs=pairs, hold=True)
    await node.start()
    gate = Gate(scheduler.port)
    await gate.start()
    reports = Reports()
    conn = reconnecting_session(
        f"ws://127.0.0.1:{gate.port}/ws/session",
        reports,
        reconnect_max_s=0.2,
        max_reconnects=None,
    )
    await conn.start()
    first_session = conn.session_id
    await first_answered(conn, node, reports, 3)
    gate.open = False
    await asyncio.to_thread(scheduler.kill)
    await node.close()
    await reports.until(lambda: not conn.connected.is_set())
    assert conn.status.state == "reconnecting"
    await conn.send_audio(SILENCE)  # said during the outage: index 3
    await asyncio.to_thread(scheduler.start)
    node2 = ScriptedNode(f"{url}/ws/node", "n2", pairs=pairs)
    await node2.start()
    gate.open = True
    try:
        await conn.drained(20)
        assert conn.session_id not in (None, first_session)
        results = [m for m in reports.messages if isinstance(m, TranslationResult)]
        assert [m.utterance_index for m in results] == [0, 1, 2, 3]
        # index 0 was answered by the first scheduler; 1-3 went again as 0-2 of the new session
        assert [m.text_translated for m in results] == ["en:0", "en:0", "en:1", "en:2"]
        assert [j.utterance_index for j in node2.jobs] == [0, 1, 2]
    finally:
        await conn.close()
        await node2.close()
        await gate.close()
