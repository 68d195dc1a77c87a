"""`hatch run cluster [--schedulers 3]`: a Redis and several scheduler instances on this
machine, one cluster, for development. Ctrl-C stops them all.

Redis runs without persistence on its own port; the instances listen on consecutive ports
from `--port` (or each on a free port with `--port 0`). It prints the comma-separated URLs to
give nodes and clients (`--scheduler`), which move to the next instance when one fails: kill
one (`kill -9`) to watch its sessions resume and its nodes move elsewhere.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from types import FrameType

READY = re.compile(r"ready on ws://[^:]+:(\d+)")
START_TIMEOUT_S = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("redis-server exited at start")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)  # a CLI polling a port: no event to wait on
    raise RuntimeError(f"redis-server did not listen on {port} in time")


def _start_instance(
    host: str, port: int, redis_url: str, log_level: str
) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lingua_scheduler",
            "--host",
            host,
            "--port",
            str(port),
            "--redis",
            redis_url,
            "--log-level",
            log_level,
        ],
        stdout=subprocess.PIPE,
        stderr=None,  # the instance's log goes to this terminal
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        found = READY.search(line)
        if found:
            threading.Thread(target=_echo, args=(process,), daemon=True).start()
            return process, int(found.group(1))
    raise RuntimeError(f"a scheduler instance exited at start (status {process.wait()})")


def _echo(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        print(line, end="", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lingua-cluster", description=__doc__)
    p.add_argument("--schedulers", type=int, default=3, help="scheduler instances (default 3)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5010, help="first instance's port; 0: free ports")
    p.add_argument("--redis-port", type=int, default=0, help="Redis port (default: a free one)")
    p.add_argument("--log-level", default="WARNING")
    args = p.parse_args(argv)
    if args.schedulers < 1:
        p.error("--schedulers must be at least 1")
    if shutil.which("redis-server") is None:
        print("lingua-cluster: redis-server not found (apt install redis-server)", file=sys.stderr)
        return 2
    redis_port = args.redis_port or _free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    instances: list[subprocess.Popen[str]] = []
    stop = threading.Event()

    def on_signal(_sig: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        _wait_for_port(redis_port, redis)
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        ports = []
        for i in range(args.schedulers):
            port = 0 if args.port == 0 else args.port + i
            process, bound = _start_instance(args.host, port, redis_url, args.log_level)
            instances.append(process)
            ports.append(bound)
        base = [f"ws://{args.host}:{port}" for port in ports]
        print(f"redis: {redis_url}", flush=True)
        print("cluster ready: " + " ".join(f"http://{args.host}:{port}" for port in ports))
        print(f"nodes:   --scheduler {','.join(u + '/ws/node' for u in base)}")
        print(f"clients: --scheduler {','.join(u + '/ws/session' for u in base)}", flush=True)
        while not stop.is_set():
            if any(process.poll() is not None for process in instances):
                print("an instance stopped (the others go on)", flush=True)
                instances = [process for process in instances if process.poll() is None]
                if not instances:
                    break
            stop.wait(1.0)
    finally:
        for process in instances:
            process.terminate()
        for process in instances:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        redis.terminate()
        redis.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
