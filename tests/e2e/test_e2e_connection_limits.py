"""The scheduler as a real process under a connection flood: idle connections are closed at
the first-message deadline, connections beyond the limit get 503, and running out of file
descriptors logs one line per interval instead of a traceback per accept() retry (issue
finding: connections)."""

from __future__ import annotations

import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lingua_client import Proc, free_port, wait_http

FILES = 128


def _limit_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FILES, FILES))


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_descriptor_flood_logs_a_line_per_interval_and_the_scheduler_recovers(
    tmp_path: Path, loop: str
) -> None:
    """On asyncio's loop every failed accept() is reported: one line per interval. uvloop
    (libuv) keeps a spare descriptor and drops what it cannot accept without reporting it:
    there, no traceback and recovery are what is checked."""
    port = free_port()
    log = tmp_path / "scheduler.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", "lingua_scheduler", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_limit_files,  # the limit is the point of the test
            env={
                "LINGUA_SCHEDULER_FIRST_MESSAGE_TIMEOUT_S": "2",
                "LINGUA_SCHEDULER_EVENT_LOOP": loop,
                "PATH": "/usr/bin:/bin",
            },
        )
    proc = Proc("scheduler", popen, log)
    held: list[socket.socket] = []
    try:
        health = f"http://127.0.0.1:{port}/health"
        wait_http(proc, health, 60)
        for _ in range(FILES + 50):  # more than the process may open: accept() fails
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(3.0)  # asyncio retries accept() once a second while descriptors are out
        for conn in held:
            conn.close()
        held.clear()
        wait_http(proc, health, 60)
        text = log.read_text()
        assert text.count("limit: accept() failed") == (1 if loop == "asyncio" else 0), text[-3000:]
        assert "Traceback" not in text, text[-3000:]
        assert "out of system resource" not in text, text[-3000:]
        assert "open-files limit" in text  # the start-up warning: limit below max_connections
    finally:
        for conn in held:
            conn.close()
        proc.stop()
