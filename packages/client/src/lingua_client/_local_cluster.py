"""Start a whole Lingua on this machine, as real processes on free ports: a hub, a scheduler,
nodes. Used by `hatch run demo`, the end-to-end tests and the benchmarks; each process logs
to its own file under the work folder, and `stop()` ends them all (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def kill(self) -> None:
        """SIGKILL: a node that vanishes, as a crashed machine would."""
        with contextlib.suppress(ProcessLookupError):
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, timeout_s: float = 15.0) -> None:
        if not self.alive():
            return
        self.popen.terminate()
        try:
            self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)


def wait_http(proc: Proc, url: str, timeout_s: float) -> None:
    """Block until `url` answers 200 (a server of `proc` is up); raises with the end of its log
    if the process exits first or `timeout_s` passes. Polls: a process that is starting has
    nothing to wait on."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{proc.name} did not come up:\n{proc.tail()}")


@dataclass
class LocalCluster:
    work: Path
    models_dir: Path | None = None
    procs: list[Proc] = field(default_factory=list)
    scheduler_port: int | None = None
    hub_port: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    """The scheduler's operator token: the full cluster view (node ids) needs it."""

    def __post_init__(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        self.models_dir = self.models_dir or self.work / "models"

    # --- URLs --------------------------------------------------------------------------------

    @property
    def session_url(self) -> str:
        return f"ws://127.0.0.1:{self.scheduler_port}/ws/session"

    @property
    def node_url(self) -> str:
        return f"ws://127.0.0.1:{self.scheduler_port}/ws/node"

    @property
    def scheduler_http(self) -> str:
        return f"http://127.0.0.1:{self.scheduler_port}"

    @property
    def hub_url(self) -> str:
        return f"http://127.0.0.1:{self.hub_port}"

    # --- processes ---------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Proc:
        log = self.work / f"{name}.log"
        full_env = {**os.environ, **self.env, **(env or {}), "PYTHONUNBUFFERED": "1"}
        handle = log.open("wb")
        popen = subprocess.Popen(
            [sys.executable, *args], stdout=handle, stderr=subprocess.STDOUT, env=full_env
        )
        handle.close()
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def start_hub(self, token: str | None = None, timeout_s: float = 60) -> Proc:
        self.hub_port = free_port()
        env = {"LINGUA_HUB_TOKEN": token} if token else {}
        proc = self._spawn(
            "hub",
            [
                "-m",
                "lingua_model_hub",
                "serve",
                "--port",
                str(self.hub_port),
                "--store",
                str(self.work / "hub-store"),
                "--log-level",
                "warning",
            ],
            env,
        )
        wait_http(proc, f"{self.hub_url}/health", timeout_s)
        return proc

    def start_scheduler(
        self, timeout_s: float = 60, port: int | None = None, **settings: Any
    ) -> Proc:
        """A scheduler on `port` (a restart reuses the old one), or on a free port."""
        self.scheduler_port = port or free_port()
        env = {f"LINGUA_SCHEDULER_{k.upper()}": str(v) for k, v in settings.items()}
        env.setdefault("LINGUA_SCHEDULER_ADMIN_TOKEN", self.admin_token)
        proc = self._spawn(
            "scheduler" if port is None else f"scheduler-{time.monotonic_ns()}",
            ["-m", "lingua_scheduler", "--port", str(self.scheduler_port)],
            env,
        )
        wait_http(proc, f"{self.scheduler_http}/health", timeout_s)
        return proc

    def start_node(
        self,
        name: str = "node",
        *extra: str,
        max_jobs: int = 1,
        heartbeat_s: float = 2.0,
        env: dict[str, str] | None = None,
    ) -> Proc:
        home = self.work / name
        args = [
            "-m",
            "lingua_node",
            "run",
            "--scheduler",
            self.node_url,
            "--home",
            str(home),
            "--models-dir",
            str(self.models_dir),
            "--max-jobs",
            str(max_jobs),
            "--no-status",
            "--heartbeat",
            str(heartbeat_s),
            *extra,
        ]
        if self.hub_port:
            args += ["--hub", self.hub_url]
        return self._spawn(name, args, env)

    def node_id(self, name: str = "node") -> str | None:
        path = self.work / name / "node_id"
        return path.read_text().strip() if path.is_file() else None

    def cluster(self) -> dict[str, Any]:
        operator = {"Authorization": f"Bearer {self.admin_token}"}
        url = f"{self.scheduler_http}/api/v1/cluster"
        data: dict[str, Any] = httpx.get(url, headers=operator, timeout=5).json()
        return data

    def wait_node_ready(self, proc: Proc, timeout_s: float = 180) -> str:
        """Block until the node registered and is `ready`; returns its node_id."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
            node_id = self.node_id(proc.name)
            if node_id:
                for node in self.cluster()["nodes"]:
                    if node["node_id"] == node_id and node["status"] == "ready":
                        return node_id
            time.sleep(0.2)
        raise TimeoutError(f"{proc.name} never became ready:\n{proc.tail()}")

    def wait_node_gone(self, node_id: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = {n["node_id"]: n["status"] for n in self.cluster()["nodes"]}
            if status.get(node_id) in (None, "offline"):
                return
            time.sleep(0.1)
        raise TimeoutError(f"{node_id} still listed as connected")

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
