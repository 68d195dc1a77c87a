"""Scheduler overhead: round trips through the real scheduler against a bare websockets relay.

One process tree: the scheduler (or the baseline relay) runs as a child process; this process
runs M client sessions and N instant test-double nodes. Each session sends 3 s PCM16 utterances
(base64 JSON, the default transport) and waits for each result: either with the pauses of
someone speaking (one utterance per second per session), or back to back, which saturates the
two cores and measures queueing more than the path itself. The baseline relay has the same
shape (client -> relay -> node -> relay -> client) but does nothing a scheduler must do: no
validation, no selection, no acks, no ordering. With speakers pausing, relay and scheduler
run side by side and take one-second turns (`compare_paced`); back to back, their runs
alternate for a few rounds. Percentiles are over the pooled round trips, so that a burst of
noise on the machine cannot decide. By default the middle process (scheduler or relay) has
one core to itself and the load generator the other (`--no-pin` lets them share both, as they
would unmanaged).

Then: 1,000 idle sessions plus 100 nodes heartbeating at the default 15 s interval, and the
scheduler's CPU use over a measured window (psutil, percent of one core).

Then, same run, the cluster (`--cluster-sessions`, paced, needs `redis-server`): the bare
relay, one instance in memory, one instance on Redis (client and nodes on it), and two
instances on Redis with every client on A and every node on B (each job and result crosses
Redis). For each: latency, the ratio of its p50 to the relay's, CPU per utterance in each
instance, and Redis commands per utterance (from Redis's own counters). Redis floats on the
cores; both instances share the middle process's core.

    python bench/bench_scheduler.py [--sessions 1 10 100] [--paced-sessions 10 100] [--rounds 3]
                                    [--paced-utterances 40]
    python bench/bench_scheduler.py --quick    # a few seconds: checks that every part runs
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import psutil
from lingua_protocol import (
    AudioData,
    CapabilityByType,
    ClientHeartbeat,
    JobAck,
    JobResult,
    LanguageCapabilities,
    LanguagePair,
    NodeHeartbeat,
    NodeRegister,
    ResourceUsage,
    SessionInit,
    Utterance,
)
from lingua_scheduler import event_loop_factory
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

AUDIO = (np.random.default_rng(0).standard_normal(48000) * 3000).astype("<i2").tobytes()
TASKS: set[asyncio.Task[None]] = set()
CPU_MS: dict[str, float] = {}  # CPU of the middle process per utterance, last run
AUDIO_B64 = base64.b64encode(AUDIO).decode()


# --- the baseline: a bare relay of the same shape ------------------------------------------


async def relay_main(port_file: str) -> None:
    """Client frames go to nodes round-robin; node replies go back to the client that asked."""
    nodes: list[ServerConnection] = []
    clients: dict[str, ServerConnection] = {}
    turn = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal turn
        path = ws.request.path if ws.request else ""
        if path == "/node":
            nodes.append(ws)
            async for data in ws:
                reply = orjson.loads(data)
                target = clients.get(reply["session_id"])
                if target is not None:
                    await target.send(data)
            return
        cid = os.urandom(8).hex()
        clients[cid] = ws
        try:
            async for data in ws:
                message = orjson.loads(data)
                message["session_id"] = cid
                node = nodes[turn % len(nodes)]
                turn += 1
                await node.send(orjson.dumps(message).decode())
        finally:
            clients.pop(cid, None)

    async with serve(handler, "127.0.0.1", 0, max_size=None, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        await asyncio.to_thread(Path(port_file).write_text, str(port))
        await asyncio.Future()


def instant_result(job: dict[str, Any], node_id: str) -> JobResult:
    """The answer both kinds of test-double node give a job at once (the relay's jobs carry
    no job id or attempt)."""
    return JobResult(
        job_id=job.get("job_id", "relay"),
        attempt_id=job.get("attempt_id"),
        node_id=node_id,
        session_id=job["session_id"],
        utterance_index=job["utterance_index"],
        success=True,
        text_asr="asr",
        text_translated="tgt",
    )


async def baseline_node(url: str) -> ClientConnection:
    ws = await connect(url + "/node", max_size=None, compression=None)

    async def run() -> None:
        async for data in ws:
            # the same reply the scheduler path's node builds, so only the middle differs
            await ws.send(instant_result(orjson.loads(data), "relay-node").to_json())

    TASKS.add(asyncio.create_task(run()))
    return ws


async def paced(pace_s: float, started: float) -> None:
    """Speakers pause: with `pace_s`, the next utterance starts `pace_s` after the last one."""
    if pace_s:
        await asyncio.sleep(max(0.0, pace_s - (time.perf_counter() - started)))


async def at(start: float | None) -> None:
    """Wait for a turn's start (`compare_paced`), if the session has turns."""
    if start is not None:
        await asyncio.sleep(max(0.0, start - time.perf_counter()))


async def baseline_session(
    url: str,
    count: int,
    latencies: list[float],
    pace_s: float = 0.0,
    starts: list[float] | None = None,
) -> None:
    """`starts`: when to send each utterance (`compare_paced`), instead of pacing itself."""
    async with connect(url + "/client", max_size=None, compression=None) as ws:
        frames = [
            orjson.dumps({"type": "utterance", "utterance_index": i, "audio": AUDIO_B64}).decode()
            for i in range(count)
        ]
        if starts is None:
            await asyncio.sleep(np.random.random() * pace_s)
        for i, frame in enumerate(frames):
            await at(starts[i] if starts else None)
            t0 = time.perf_counter()
            await ws.send(frame)
            orjson.loads(await ws.recv())  # read the reply as the scheduler path's client does
            latencies.append(time.perf_counter() - t0)
            if starts is None:
                await paced(pace_s, t0)


# --- the real scheduler -----------------------------------------------------------------------


def register(node_id: str) -> NodeRegister:
    return NodeRegister(
        node_id=node_id,
        version="bench-instant-node",
        capability_schema_version="2.0",
        capability_by_type=[CapabilityByType(type=t, ready=True) for t in ("ASR", "NMT", "TTS")],
        language_capabilities=LanguageCapabilities(
            supported_language_pairs=[LanguagePair(src="en", tgt="zh")]
        ),
        max_concurrent_jobs=10_000,
    )


async def instant_node(
    url: str, node_id: str, heartbeat_s: float | None = None
) -> ClientConnection:
    """Acks and answers every job at once. Reads job ids with orjson like the baseline node."""
    ws = await connect(url, max_size=None, compression=None)
    await ws.send(register(node_id).to_json())
    await ws.recv()

    async def run() -> None:
        async for data in ws:
            job = orjson.loads(data)
            if job.get("type") != "job_assign":
                continue
            ack = JobAck(job_id=job["job_id"], attempt_id=job.get("attempt_id"), node_id=node_id)
            await ws.send(ack.to_json())
            await ws.send(instant_result(job, node_id).to_json())

    async def beat() -> None:
        assert heartbeat_s is not None
        while not ws.close_code:
            await asyncio.sleep(heartbeat_s * (0.5 + np.random.random()))
            hb = NodeHeartbeat(
                node_id=node_id,
                timestamp=int(time.time() * 1000),
                resource_usage=ResourceUsage(cpu_percent=5.0, running_jobs=0),
            )
            with contextlib.suppress(Exception):
                await ws.send(hb.to_json())

    TASKS.add(asyncio.create_task(run()))
    if heartbeat_s:
        TASKS.add(asyncio.create_task(beat()))
    return ws


async def scheduler_session(
    url: str,
    count: int,
    latencies: list[float],
    pace_s: float = 0.0,
    starts: list[float] | None = None,
) -> None:
    async with connect(url, max_size=None, compression=None) as ws:
        await ws.send(SessionInit(src_lang="en", tgt_lang="zh").to_json())
        ack = orjson.loads(await ws.recv())
        sid = ack["session_id"]
        audio = AudioData.from_bytes(AUDIO)
        # frames are built before timing, as in the baseline: only the transport is measured
        frames = [
            Utterance(session_id=sid, utterance_index=i, audio=audio).to_json()
            for i in range(count)
        ]
        if starts is None:
            await asyncio.sleep(np.random.random() * pace_s)
        for i, frame in enumerate(frames):
            await at(starts[i] if starts else None)
            t0 = time.perf_counter()
            await ws.send(frame)
            while True:
                reply = orjson.loads(await ws.recv())
                if reply.get("utterance_index") == i:
                    break
            if reply["type"] != "translation_result":
                raise RuntimeError(f"unexpected reply {reply}")
            latencies.append(time.perf_counter() - t0)
            if starts is None:
                await paced(pace_s, t0)


@dataclass
class Child:
    proc: subprocess.Popen[str]
    port: int

    def stop(self) -> None:
        self.proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        if self.proc.poll() is None:
            self.proc.kill()


STARTS = itertools.count()  # profile files: one per scheduler started (LINGUA_BENCH_PROFILE.N)


def start_scheduler(extra_env: dict[str, str] | None = None) -> Child:
    """A scheduler process; with LINGUA_SCHEDULER_REDIS_URL in `extra_env`, a cluster instance."""
    # As in production: node credentials persisted (SQLite), which registers write off the loop.
    state = os.path.join(tempfile.mkdtemp(prefix="lingua-bench-"), "scheduler-state.sqlite")
    env = dict(os.environ, LINGUA_SCHEDULER_STATE_PATH=state, **(extra_env or {}))
    proc = subprocess.Popen(
        [
            sys.executable,
            *(
                ["-m", "cProfile", "-o", f"{env['LINGUA_BENCH_PROFILE']}.{next(STARTS)}"]
                if "LINGUA_BENCH_PROFILE" in env
                else []
            ),
            "-m",
            "lingua_scheduler",
            "--port",
            "0",
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    port = int(line.rsplit(":", 1)[1].split()[0].split("/")[0])
    return pinned(Child(proc, port))


def run_on_loop(main: Coroutine[Any, Any, None], choice: str) -> None:
    """The relay runs on the event loop the scheduler runs on (same setting, same choice)."""
    with asyncio.Runner(loop_factory=event_loop_factory(choice)) as runner:
        runner.run(main)


def loop_name(choice: str) -> str:
    factory = event_loop_factory(choice)
    return "asyncio" if factory is None else factory.__module__.split(".")[0]


def start_relay() -> Child:
    port_file = f"/tmp/lingua-bench-relay-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(port_file)
    proc = subprocess.Popen([sys.executable, __file__, "--relay", port_file], text=True)
    port_path = Path(port_file)
    while not port_path.exists() or not port_path.read_text():
        time.sleep(0.05)
    port = int(port_path.read_text())
    os.unlink(port_file)
    return pinned(Child(proc, port))


PIN: dict[str, set[int]] = {}  # "middle" and "load" CPU sets when --pin is on


def pin_cpus(enabled: bool) -> str:
    """Give the middle process (scheduler or relay) one core of its own and this process the
    others, so that the two never compete for a core and migrate: with both unpinned on two
    cores, the load generator's bursts show up as the middle's latency, in either path."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not enabled or len(cpus) < 2:
        return "not pinned"
    PIN["middle"], PIN["load"] = {cpus[-1]}, set(cpus[:-1])
    os.sched_setaffinity(0, PIN["load"])
    return f"middle process on CPU {cpus[-1]}, clients and nodes on CPU {cpus[:-1]}"


def pinned(child: Child) -> Child:
    if PIN:
        os.sched_setaffinity(child.proc.pid, PIN["middle"])
    return child


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000


async def run_load(
    kind: str, sessions: int, nodes: int, utterances: int, pace_s: float = 0.0
) -> tuple[list[float], float]:
    path = await open_path(kind, nodes)
    try:
        latencies: list[float] = []
        # warm up both paths the same way
        await asyncio.gather(*(path.session(path.target, 2, []) for _ in range(min(sessions, 10))))
        proc = psutil.Process(path.child.proc.pid)
        c0 = proc.cpu_times()
        t0 = time.perf_counter()
        await asyncio.gather(
            *(path.session(path.target, utterances, latencies, pace_s) for _ in range(sessions))
        )
        wall = time.perf_counter() - t0
        c1 = proc.cpu_times()
        CPU_MS[kind] = 1000 * ((c1.user + c1.system) - (c0.user + c0.system)) / len(latencies)
        return latencies, len(latencies) / wall
    finally:
        await path.close()


@dataclass
class UnderTest:
    """One path under test: its middle process, its nodes, and how a session talks to it."""

    child: Child
    target: str
    session: Callable[..., Coroutine[Any, Any, None]]
    nodes: list[ClientConnection]

    async def close(self) -> None:
        for ws in self.nodes:
            await ws.close()
        self.child.stop()


async def open_path(kind: str, nodes: int) -> UnderTest:
    """The relay or a scheduler, started with `nodes` instant nodes connected."""
    # a real speaker makes ~1 utterance per second; the bench sends back to back
    limits = {
        "LINGUA_SCHEDULER_UTTERANCES_PER_S": "100000",
        "LINGUA_SCHEDULER_UTTERANCE_BURST": "100000",
    }
    child = start_scheduler(limits) if kind == "scheduler" else start_relay()
    url = f"ws://127.0.0.1:{child.port}"
    if kind == "scheduler":
        # heartbeating as real nodes do: a paced row outlasts the scheduler's offline timeout
        conns = [
            await instant_node(url + "/ws/node", f"bench-{i}", heartbeat_s=15.0)
            for i in range(nodes)
        ]
        return UnderTest(child, url + "/ws/session", scheduler_session, conns)
    conns = [await baseline_node(url) for _ in range(nodes)]
    return UnderTest(child, url, baseline_session, conns)


async def run_idle(sessions: int, nodes: int, window_s: float) -> float:
    child = start_scheduler()
    conns: list[ClientConnection] = []
    try:
        url = f"ws://127.0.0.1:{child.port}"
        for i in range(nodes):
            conns.append(await instant_node(url + "/ws/node", f"idle-{i}", heartbeat_s=15.0))
        sids: list[tuple[ClientConnection, str]] = []
        for _ in range(sessions):
            ws = await connect(url + "/ws/session", compression=None)
            await ws.send(SessionInit(src_lang="en", tgt_lang="zh").to_json())
            sids.append((ws, orjson.loads(await ws.recv())["session_id"]))
            conns.append(ws)

        async def client_beats() -> None:
            while True:
                for ws, sid in sids:
                    await ws.send(ClientHeartbeat(session_id=sid, timestamp=1).to_json())
                    with contextlib.suppress(Exception):
                        await ws.recv()
                    await asyncio.sleep(15.0 / len(sids))

        beats = asyncio.get_running_loop().create_task(client_beats())
        await asyncio.sleep(3)  # let connection set-up settle
        proc = psutil.Process(child.proc.pid)
        c0 = proc.cpu_times()
        t0 = time.perf_counter()
        await asyncio.sleep(window_s)
        c1 = proc.cpu_times()
        used = (c1.user + c1.system) - (c0.user + c0.system)
        beats.cancel()
        return 100.0 * used / (time.perf_counter() - t0)
    finally:
        for ws in conns:
            with contextlib.suppress(Exception):
                await ws.close()
        child.stop()


# --- the cluster ------------------------------------------------------------------------------

CLUSTER_KINDS = ("relay", "scheduler", "redis", "cross")
CLUSTER_LABEL = {
    "relay": "bare relay",
    "scheduler": "in memory",
    "redis": "1 instance on Redis",
    "cross": "client A, node B",
}
CPU_SPLIT: dict[str, list[float]] = {}  # CPU ms per utterance of each instance, last run
REDIS_OPS: dict[str, float] = {}  # Redis commands per utterance, last run


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return proc, f"redis://127.0.0.1:{port}/0"
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def redis_commands(url: str) -> int:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return int(client.info("stats")["total_commands_processed"])
    finally:
        client.close()


async def ready_nodes(port: int) -> int:
    def get() -> int:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/cluster") as reply:
            return int(orjson.loads(reply.read())["ready_nodes"])

    return await asyncio.to_thread(get)


async def run_cluster_load(
    kind: str, redis_url: str, sessions: int, nodes: int, utterances: int, pace_s: float
) -> tuple[list[float], float]:
    """One cluster path (`CLUSTER_KINDS` but the relay): instances started fresh on a flushed
    Redis, nodes and clients connected as the kind says, then the paced sessions."""
    import redis

    redis.Redis.from_url(redis_url).flushall()
    env = {
        "LINGUA_SCHEDULER_UTTERANCES_PER_S": "100000",
        "LINGUA_SCHEDULER_UTTERANCE_BURST": "100000",
        "LINGUA_SCHEDULER_REDIS_URL": redis_url,
    }
    if kind == "scheduler":
        del env["LINGUA_SCHEDULER_REDIS_URL"]
    children = [start_scheduler(env)]
    if kind == "cross":
        children.append(start_scheduler(env))
    a, b = children[0], children[-1]
    try:
        conns = [
            await instant_node(f"ws://127.0.0.1:{b.port}/ws/node", f"bench-{i}")
            for i in range(nodes)
        ]
        async with asyncio.timeout(10):
            while await ready_nodes(a.port) < nodes:  # noqa: ASYNC110  (another process's view)
                await asyncio.sleep(0.05)  # the node view reaches A within a second
        target = f"ws://127.0.0.1:{a.port}/ws/session"
        await asyncio.gather(*(scheduler_session(target, 2, []) for _ in range(min(sessions, 10))))
        procs = [psutil.Process(c.proc.pid) for c in children]
        c0 = [p.cpu_times() for p in procs]
        ops0 = redis_commands(redis_url) if kind != "scheduler" else 0
        latencies: list[float] = []
        t0 = time.perf_counter()
        await asyncio.gather(
            *(scheduler_session(target, utterances, latencies, pace_s) for _ in range(sessions))
        )
        wall = time.perf_counter() - t0
        ops1 = redis_commands(redis_url) if kind != "scheduler" else 0
        c1 = [p.cpu_times() for p in procs]
        split = [
            1000 * ((y.user + y.system) - (x.user + x.system)) / len(latencies)
            for x, y in zip(c0, c1, strict=True)
        ]
        CPU_SPLIT[kind] = split
        CPU_MS[kind] = sum(split)
        REDIS_OPS[kind] = (ops1 - ops0) / len(latencies)
        for ws in conns:
            await ws.close()
        return latencies, len(latencies) / wall
    finally:
        for child in children:
            child.stop()


async def compare_cluster(
    redis_url: str, sessions: int, nodes: int, count: int, pace: float, rounds: int
) -> float:
    """The four paths in rotating order, `rounds` times each; returns cross p50 / in-memory p50."""
    runs: dict[str, list[list[float]]] = {k: [] for k in CLUSTER_KINDS}
    cpu: dict[str, list[list[float]]] = {k: [] for k in CLUSTER_KINDS}
    ops: dict[str, list[float]] = {k: [] for k in CLUSTER_KINDS}
    for r in range(rounds):
        order = CLUSTER_KINDS[r % 4 :] + CLUSTER_KINDS[: r % 4]
        for kind in order:
            if kind == "relay":
                lat, _ = await run_load("relay", sessions, nodes, count, pace)
                cpu[kind].append([CPU_MS["relay"]])
            else:
                lat, _ = await run_cluster_load(kind, redis_url, sessions, nodes, count, pace)
                cpu[kind].append(CPU_SPLIT[kind])
                if kind != "scheduler":
                    ops[kind].append(REDIS_OPS[kind])
            runs[kind].append(lat)
    p50 = {k: pct([x for run in v for x in run], 50) for k, v in runs.items()}
    print(
        f"{'path':>20} {'p50 ms':>8} {'p99 ms':>8} {'x relay':>8} {'CPU ms/utt per instance':>24} "
        f"{'Redis cmd/utt':>13}"
    )
    for kind in CLUSTER_KINDS:
        pooled = [x for run in runs[kind] for x in run]
        per_instance = [
            statistics.median(c[i] for c in cpu[kind]) for i in range(len(cpu[kind][0]))
        ]
        cpus = " + ".join(f"{c:.2f}" for c in per_instance)
        redis_ops = f"{statistics.median(ops[kind]):.1f}" if ops[kind] else "-"
        print(
            f"{CLUSTER_LABEL[kind]:>20} {p50[kind]:>8.2f} {pct(pooled, 99):>8.2f} "
            f"{p50[kind] / p50['relay']:>8.2f} {cpus:>24} {redis_ops:>13}"
        )
    ratio = p50["cross"] / p50["scheduler"]
    print(
        f"cross-instance p50 x{ratio:.2f} of the in-memory path (target <= 2): "
        f"{'met' if ratio <= 2.0 else 'NOT met'}"
    )
    return ratio


@dataclass
class Run:
    latencies: list[float]
    p50: float
    p99: float
    rate: float
    cpu_middle: float  # ms of CPU per utterance in the scheduler (or relay) process
    cpu_load: float  # ms of CPU per utterance in this process (clients and nodes)


async def measure(kind: str, sessions: int, nodes: int, count: int, pace: float) -> Run:
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    lat, rate = await run_load(kind, sessions, nodes, count, pace)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    load = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) * 1000 / len(lat)
    return Run(lat, pct(lat, 50), pct(lat, 99), rate, CPU_MS[kind], load)


def median(runs: list[Run], attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in runs)


async def compare(
    sessions: int, nodes: int, count: int, pace: float, rounds: int
) -> tuple[float, float]:
    """Relay and scheduler in alternating order, `rounds` times each. Percentiles are over the
    pooled round trips of all rounds, rates and CPU are medians over rounds, so that a burst of
    noise on the machine cannot decide. Returns (p50 ratio, p99 added ms)."""
    runs: dict[str, list[Run]] = {"relay": [], "scheduler": []}
    for r in range(rounds):
        for kind in ("relay", "scheduler") if r % 2 == 0 else ("scheduler", "relay"):
            runs[kind].append(await measure(kind, sessions, nodes, count, pace))
    p50: dict[str, float] = {}
    p99: dict[str, float] = {}
    for kind, rs in runs.items():
        pooled = [x for r in rs for x in r.latencies]
        p50[kind], p99[kind] = pct(pooled, 50), pct(pooled, 99)
        print(
            f"{sessions:>8} {kind:>10} {p50[kind]:>8.2f} {p99[kind]:>8.2f} "
            f"{median(rs, 'rate'):>8.0f} {median(rs, 'cpu_middle'):>11.2f} "
            f"{median(rs, 'cpu_load'):>9.2f}"
        )
    ratio, added = p50["scheduler"] / p50["relay"], p99["scheduler"] - p99["relay"]
    per_round = sorted(s.p50 / b.p50 for s, b in zip(runs["scheduler"], runs["relay"], strict=True))
    print(
        f"{sessions:>8} {'scheduler':>10} p50 x{ratio:.2f} of the relay "
        f"(rounds x{per_round[0]:.2f}..x{per_round[-1]:.2f}), p99 added {added:+.2f} ms"
    )
    return ratio, added


TURN_SENDS_WITHIN = 0.8
"""A session sends its utterance at a random moment in the first 80% of its path's turn, so
that every round trip ends inside the turn and the two paths never overlap."""
BLOCK_TURNS = 5
"""Per-block ratios (the "rounds" range) compare the p50s of this many turns of each path."""


async def compare_paced(sessions: int, nodes: int, count: int, pace: float) -> tuple[float, float]:
    """The speakers-pausing rows: relay and scheduler run side by side on the middle core and
    take turns of `pace` seconds. In each turn, each session of one path sends one utterance
    (at a random moment within the turn); in the next turn, the other path's do; the order
    flips every pair of turns. `count` turns each.

    This machine's host load moves the relay's own p50 by ~50% from one minute to the next.
    Rounds of ~20 s per path, one path after the other, gave per-round ratios from x1.2 to
    x2.0 for the same code; turns of one second put both paths under the same load, so the
    ratio measures the scheduler, not the minute it ran in. Percentiles are over the pooled
    round trips; the range is over blocks of `BLOCK_TURNS` turns. Returns (p50 ratio, p99
    added ms)."""
    kinds = ("relay", "scheduler")
    paths = {kind: await open_path(kind, nodes) for kind in kinds}
    try:
        for path in paths.values():  # warm up both paths the same way
            await asyncio.gather(
                *(path.session(path.target, 2, []) for _ in range(min(sessions, 10)))
            )
        begin = time.perf_counter() + 1.0  # every session connected before the first turn
        turns: dict[str, list[float]] = {kind: [] for kind in kinds}
        for k in range(count):
            first, second = kinds if k % 2 == 0 else kinds[::-1]
            turns[first].append(begin + 2 * k * pace)
            turns[second].append(begin + (2 * k + 1) * pace)
        rng = np.random.default_rng()
        latencies: dict[str, list[list[float]]] = {
            kind: [[] for _ in range(sessions)] for kind in kinds
        }
        procs = {kind: psutil.Process(path.child.proc.pid) for kind, path in paths.items()}
        cpu0 = {kind: sum(proc.cpu_times()[:2]) for kind, proc in procs.items()}
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        await asyncio.gather(
            *(
                paths[kind].session(
                    paths[kind].target,
                    count,
                    latencies[kind][i],
                    pace,
                    [t + rng.random() * TURN_SENDS_WITHIN * pace for t in turns[kind]],
                )
                for kind in kinds
                for i in range(sessions)
            )
        )
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu1 = {kind: sum(proc.cpu_times()[:2]) for kind, proc in procs.items()}
    finally:
        for path in paths.values():
            await path.close()
    load = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) * 1000 / (2 * sessions * count)
    p50: dict[str, float] = {}
    p99: dict[str, float] = {}
    for kind in kinds:
        pooled = [x for per_session in latencies[kind] for x in per_session]
        p50[kind], p99[kind] = pct(pooled, 50), pct(pooled, 99)
        cpu = 1000 * (cpu1[kind] - cpu0[kind]) / len(pooled)
        print(
            f"{sessions:>8} {kind:>10} {p50[kind]:>8.2f} {p99[kind]:>8.2f} "
            f"{len(pooled) / (count * pace):>8.0f} {cpu:>11.2f} {load:>9.2f}"
        )
    blocks = []
    for b in range(0, count, BLOCK_TURNS):
        block = {
            kind: pct([x for ls in latencies[kind] for x in ls[b : b + BLOCK_TURNS]], 50)
            for kind in kinds
        }
        blocks.append(block["scheduler"] / block["relay"])
    ratio, added = p50["scheduler"] / p50["relay"], p99["scheduler"] - p99["relay"]
    print(
        f"{sessions:>8} {'scheduler':>10} p50 x{ratio:.2f} of the relay "
        f"(blocks of {BLOCK_TURNS} turns x{min(blocks):.2f}..x{max(blocks):.2f}), "
        f"p99 added {added:+.2f} ms"
    )
    return ratio, added


HEADER = (
    f"{'sessions':>8} {'path':>10} {'p50 ms':>8} {'p99 ms':>8} {'utt/s':>8} "
    f"{'CPU ms/utt':>11} {'load gen':>9}"
)


async def main(args: argparse.Namespace) -> None:
    pinning = pin_cpus(args.pin)
    print(
        f"scheduler bench: {args.nodes} instant nodes, 3 s PCM16 utterances (base64 JSON); "
        f"paced rows: the two paths take turns of {args.pace:g} s, {args.paced_utterances} "
        f"each; other rows: {args.rounds} alternating rounds; "
        f"{pinning}; event loop in both middle "
        f"processes: {loop_name(os.environ.get('LINGUA_SCHEDULER_EVENT_LOOP', 'auto'))}"
    )
    print(
        "CPU ms/utt: the scheduler's (or relay's) process; load gen: this process, which runs "
        "every client and node"
    )
    targets: dict[str, tuple[float, float]] = {}
    if args.cluster_only:
        args.paced_sessions, args.sessions, args.idle_sessions = [], [], 0
    if args.paced_sessions:
        print(f"\nspeakers pausing: one utterance per {args.pace:g} s per session")
        print(HEADER)
    for sessions in args.paced_sessions:
        targets[f"paced {sessions}"] = await compare_paced(
            sessions, args.nodes, args.paced_utterances, args.pace
        )
    if args.sessions:
        print("\nback to back (saturating: latency is mostly queueing behind other sessions)")
        print(HEADER)
    for sessions in args.sessions:
        targets[f"saturating {sessions}"] = await compare(
            sessions, args.nodes, args.utterances, 0.0, args.rounds
        )
    print()
    if "paced 100" in targets:
        ratio, added = targets["paced 100"]
        met = ratio <= 1.3 and added <= 2.0
        print(
            "target at 100 sessions with speakers pausing: p50 ratio <= 1.3 and p99 added "
            f"<= 2 ms: x{ratio:.2f}, {added:+.2f} ms -> {'met' if met else 'NOT met'}"
        )
    if "saturating 100" in targets:
        ratio, added = targets["saturating 100"]
        print(
            f"at 100 sessions back to back: p50 ratio x{ratio:.2f} "
            f"({'<=' if ratio <= 1.3 else '>'} 1.3); p99 {added:+.2f} ms, on a tail that is "
            "queueing behind the other 99 sessions, so an added-milliseconds bound does not apply"
        )
    if args.idle_sessions:
        cpu = await run_idle(args.idle_sessions, args.idle_nodes, args.window)
        print(
            f"idle: {args.idle_sessions} sessions + {args.idle_nodes} nodes heartbeating every "
            f"15 s: scheduler CPU {cpu:.1f}% of one core over {args.window:.0f} s (target < 10%)"
        )
    if args.cluster_sessions:
        import shutil

        if shutil.which("redis-server") is None:
            print("\ncluster: skipped (no redis-server)")
            return
        redis_proc, redis_url = start_redis()
        try:
            print(
                f"\ncluster: {args.cluster_sessions} sessions, one utterance per {args.pace:g} s "
                f"each, {args.nodes} instant nodes; {args.rounds} rotating rounds"
            )
            await compare_cluster(
                redis_url,
                args.cluster_sessions,
                args.nodes,
                args.paced_utterances,
                args.pace,
                args.rounds,
            )
        finally:
            redis_proc.terminate()
            redis_proc.wait()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--relay":
        run_on_loop(relay_main(sys.argv[2]), os.environ.get("LINGUA_SCHEDULER_EVENT_LOOP", "auto"))
        raise SystemExit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--paced-sessions", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--utterances", type=int, default=20, help="per session, saturating")
    parser.add_argument(
        "--paced-utterances",
        type=int,
        default=40,
        help="per session, paced: turns of each path (their ~1 ms round trips carry the target "
        "and move most with noise on the machine, so they get the most samples)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one core for the scheduler/relay, the other for clients and nodes",
    )
    parser.add_argument("--idle-sessions", type=int, default=1000)
    parser.add_argument("--idle-nodes", type=int, default=100)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--pace", type=float, default=1.0, help="seconds between utterances")
    parser.add_argument(
        "--cluster-sessions", type=int, default=100, help="paced sessions per cluster path; 0: skip"
    )
    parser.add_argument(
        "--cluster-only", action="store_true", help="only the cluster part (needs redis-server)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, one round: checks that every part runs"
    )
    parsed = parser.parse_args()
    if parsed.quick:
        parsed.sessions, parsed.paced_sessions, parsed.rounds = [2], [2], 1
        parsed.utterances = parsed.paced_utterances = 3
        parsed.idle_sessions, parsed.idle_nodes, parsed.window = 10, 2, 1.0
        parsed.cluster_sessions, parsed.pace, parsed.nodes = 5, 0.2, 2
    asyncio.run(main(parsed))
