"""`hatch run cluster`: it starts Redis and the instances, prints their URLs, and stops them
all on SIGTERM."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest
from lingua_scheduler.testing.redis_server import redis_available

# real scheduler processes and a real redis-server: end to end
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not redis_available(), reason="needs redis-server"),
]


def test_dev_cluster_starts_two_instances_and_stops_them() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lingua_scheduler._cluster.dev_cluster",
            "--schedulers",
            "2",
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = ""
        for line in process.stdout:
            if line.startswith("cluster ready: "):
                ready = line
                break
        urls = ready.removeprefix("cluster ready: ").split()
        assert len(urls) == 2
        for url in urls:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as reply:
                assert json.loads(reply.read()) == {"status": "ok"}
    finally:
        process.terminate()
        assert process.wait(20) == 0
