"""Run a hub in a child process on a free port: for the demo, the end-to-end suite and the
benchmarks, which need a real server they can start and stop."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _limit_open_files(n: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))


class HubProcess:
    """A hub serving `store` on a free port of 127.0.0.1.

    `env` adds `LINGUA_HUB_*` settings; `open_files` caps the child's open-file limit (soft and
    hard), as a machine with a low `ulimit -n` would."""

    def __init__(
        self,
        store: Path,
        token: str | None = None,
        port: int | None = None,
        *,
        env: dict[str, str] | None = None,
        open_files: int | None = None,
    ) -> None:
        self.store = store
        self.token = token
        self.port = port or free_port()
        self.env = dict(env or {})
        self.open_files = open_files
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> HubProcess:
        env = dict(os.environ)
        env.pop("LINGUA_HUB_TOKEN", None)
        if self.token:
            env["LINGUA_HUB_TOKEN"] = self.token
        env.update(self.env)
        limit = self.open_files
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lingua_model_hub",
                "serve",
                "--port",
                str(self.port),
                "--store",
                str(self.store),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            preexec_fn=None if limit is None else lambda: _limit_open_files(limit),
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise TimeoutError("hub did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def __enter__(self) -> HubProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
