"""Run a hub in a child process on a free port: for the demo, the end-to-end suite and the
benchmarks, which need a real server they can start and stop."""

from __future__ import annotations

import os
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


class HubProcess:
    def __init__(self, store: Path, token: str | None = None, port: int | None = None) -> None:
        self.store = store
        self.token = token
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> HubProcess:
        env = dict(os.environ)
        env.pop("LINGUA_HUB_TOKEN", None)
        if self.token:
            env["LINGUA_HUB_TOKEN"] = self.token
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
