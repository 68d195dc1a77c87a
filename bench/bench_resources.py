"""Resource budget of the scheduler under load that tries to exhaust it.

(a) Memory: N sessions (1,000 by default) each send 256 KiB utterances (8 s of speech) to a
    cluster of one node that never answers, until the scheduler refuses one (flow control:
    RATE_LIMITED; the dispatch queue's byte budget: NODE_OVERLOADED). The scheduler's RSS before
    and after, with the limits that bound it. Each send is followed by a heartbeat round trip,
    so a refusal is seen before the next send (the scheduler answers a connection in order).
(b) Stall: p50/p99/max latency of `GET /health`, probed from a separate process every 20 ms,
    idle and then while a hostile client (index jumps, WAV that is not base64, bursts beyond
    the flow-control window, a client that never reads its results) and a hostile node (a
    register with 90,000 language pairs, a heartbeat flood, a pairing_code_request flood) do
    their worst. What the scheduler answered each hostile action is printed beside it.

    python bench/bench_resources.py [--sessions 1000] [--stall-s 10]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import http.client
import itertools
import os
import statistics
import string
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import psutil
from bench_scheduler import Child, start_scheduler
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

UTTERANCE_BYTES = 256 * 1024
TIMEOUTS = {  # part (a) holds its jobs: nothing may time out while it measures
    "LINGUA_SCHEDULER_ACK_TIMEOUT_S": "600",
    "LINGUA_SCHEDULER_JOB_TIMEOUT_S": "600",
    "LINGUA_SCHEDULER_QUEUE_TIMEOUT_S": "600",
    "LINGUA_SCHEDULER_UTTERANCE_BURST": "1000",
    "LINGUA_SCHEDULER_UTTERANCES_PER_S": "1000",
}


def dumps(body: dict[str, Any]) -> str:
    return orjson.dumps(body).decode()


def register(node_id: str, pairs: list[tuple[str, str]], max_jobs: int = 4) -> str:
    return dumps(
        {
            "type": "node_register",
            "node_id": node_id,
            "capability_schema_version": "2.0",
            "capability_by_type": [{"type": t, "ready": True} for t in ("ASR", "NMT", "TTS")],
            "language_capabilities": {
                "supported_language_pairs": [{"src": s, "tgt": t} for s, t in pairs]
            },
            "max_concurrent_jobs": max_jobs,
        }
    )


def rss_mib(pid: int) -> tuple[float, float]:
    """Current and peak resident memory of `pid`, MiB."""
    peak = 0.0
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return psutil.Process(pid).memory_info().rss / 2**20, peak


async def silent_node(url: str, node_id: str) -> ClientConnection:
    """Registers, then reads and ignores everything: jobs stay assigned."""
    ws = await connect(f"{url}/ws/node", max_size=None)
    await ws.send(register(node_id, [("en", "zh")]))
    await ws.recv()

    async def drain() -> None:
        with contextlib.suppress(Exception):
            async for _ in ws:
                pass

    task = asyncio.create_task(drain())
    task.add_done_callback(lambda _: None)
    return ws


class Session:
    def __init__(self, ws: ClientConnection, session_id: str) -> None:
        self.ws = ws
        self.session_id = session_id
        self.refused: Counter[str] = Counter()
        self.beat = asyncio.Event()

    async def read(self) -> None:
        with contextlib.suppress(Exception):
            async for data in self.ws:
                msg = orjson.loads(data)
                if msg.get("type") == "server_heartbeat":
                    self.beat.set()
                elif msg.get("type") == "error":
                    self.refused[msg["code"]] += 1


async def open_session(url: str, **init: Any) -> tuple[ClientConnection, dict[str, Any]]:
    ws = await connect(f"{url}/ws/session", max_size=None, **init.pop("_connect", {}))
    await ws.send(dumps({"type": "session_init", "src_lang": "en", "tgt_lang": "zh", **init}))
    return ws, orjson.loads(await ws.recv())


async def fill_session(url: str, audio: str, tasks: set[asyncio.Task[None]]) -> Session:
    """Send utterances until the scheduler refuses one or the window is full."""
    ws, ack = await open_session(url)
    session = Session(ws, ack["session_id"])
    tasks.add(asyncio.create_task(session.read()))
    window = ack.get("max_in_flight_utterances") or 32
    for index in itertools.count():
        if session.refused or index > window:
            break
        await ws.send(
            dumps(
                {
                    "type": "utterance",
                    "session_id": session.session_id,
                    "utterance_index": index,
                    "audio": audio,
                }
            )
        )
        session.beat.clear()
        await ws.send(
            dumps({"type": "client_heartbeat", "session_id": session.session_id, "timestamp": 1})
        )
        await session.beat.wait()
    return session


async def memory(sessions: int) -> None:
    child = start_scheduler(TIMEOUTS)
    url = f"ws://127.0.0.1:{child.port}"
    tasks: set[asyncio.Task[None]] = set()
    try:
        await silent_node(url, "silent")
        before, _ = rss_mib(child.proc.pid)
        audio = base64.b64encode(os.urandom(UTTERANCE_BYTES)).decode()
        t0 = time.perf_counter()
        opened: list[Session] = []
        for start in range(0, sessions, 50):
            batch = range(start, min(sessions, start + 50))
            opened += await asyncio.gather(*(fill_session(url, audio, tasks) for _ in batch))
        took = time.perf_counter() - t0
        after, peak = rss_mib(child.proc.pid)
        refused: Counter[str] = Counter()
        for s in opened:
            refused.update(s.refused)
        print(f"(a) {sessions} sessions, {UTTERANCE_BYTES // 1024} KiB utterances, one node that")
        print(f"    never answers (4 jobs at a time); filled in {took:.1f} s")
        print(f"    scheduler RSS: {before:.0f} MiB before, {after:.0f} MiB after, peak {peak:.0f}")
        print(f"    refusals that ended a session's sending: {dict(refused)}")
        print("    (queued audio is held as the base64 it arrived as: 4/3 of its decoded size)")
        print(
            "    bounded by: max_in_flight_bytes 8 MiB and max_in_flight_utterances 32 per "
            "session, max_queue_bytes 256 MiB and max_queue 1000 in all"
        )
        for s in opened:
            await s.ws.close()
    finally:
        for task in tasks:
            task.cancel()
        child.stop()


# --- (b) stall ------------------------------------------------------------------------------


PROBE_TIMEOUT_S = 5.0


def probe_main(port: int, seconds: float) -> None:
    """Child process: GET /health every 20 ms (a new connection each: the scheduler closes
    after each HTTP answer); prints one latency (ms) per line, the timeout for no answer."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PROBE_TIMEOUT_S)
            conn.request("GET", "/health")
            conn.getresponse().read()
            conn.close()
            took = time.perf_counter() - t0
        except OSError:
            took = PROBE_TIMEOUT_S
        print(f"{took * 1000:.3f}", flush=True)
        time.sleep(0.02)


def probe(port: int, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "--probe", str(port), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )


def summary(proc: subprocess.Popen[str]) -> str:
    out, _ = proc.communicate()
    values = sorted(float(v) for v in out.split())
    if not values:
        return "no samples"
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    return (
        f"p50 {statistics.median(values):.2f} ms, p99 {p99:.2f} ms, max {values[-1]:.2f} ms "
        f"({len(values)} probes)"
    )


def metric(port: int, name: str) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PROBE_TIMEOUT_S)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return float("nan")


async def first_reply(ws: ClientConnection) -> str:
    msg = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
    return str(msg.get("code") or msg.get("status") or msg.get("type"))


async def count_replies(ws: ClientConnection, counts: Counter[str]) -> None:
    """Count what the scheduler sends a hostile peer, by error code or message type, until
    the connection ends (closing it may be the scheduler's answer) or the task is cancelled."""
    with contextlib.suppress(ConnectionClosed):
        async for data in ws:
            msg = orjson.loads(data)
            counts[str(msg.get("code") or msg.get("type"))] += 1


async def hostile_client(url: str, end: float, log: dict[str, str]) -> None:
    audio = base64.b64encode(b"\x00\x00" * 8000).decode()
    ws, ack = await open_session(url)
    sid = ack["session_id"]

    def utt(index: int, session: str = sid, **kw: Any) -> str:
        return dumps(
            {"type": "utterance", "session_id": session, "utterance_index": index, "audio": audio}
            | kw
        )

    await ws.send(utt(0))
    await first_reply(ws)  # answered by the echo node
    for name, index in (("index 10^9", 10**9), ("index 2^53-1", 2**53 - 1)):
        await ws.send(utt(index))
        log[f"client: {name}"] = await first_reply(ws)
    await ws.send(utt(1, audio="abc", audio_format="wav"))
    log["client: WAV not base64"] = await first_reply(ws)
    # The non-reader: its results (with 256 KiB of speech each) pile up unread.
    counts: Counter[str] = Counter()
    reader = asyncio.create_task(count_replies(ws, counts))
    lazy, lazy_ack = await open_session(url, _connect={"max_queue": 1})
    index, lazy_index = 1, 0
    while time.monotonic() < end:
        for _ in range(40):  # a burst beyond the 32-utterance window
            await ws.send(utt(index))
            index += 1
        with contextlib.suppress(Exception):
            for _ in range(3):
                await lazy.send(utt(lazy_index, lazy_ack["session_id"]))
                lazy_index += 1
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # the last answers
    reader.cancel()
    log["client: bursts of 40"] = ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))
    port = int(url.rsplit(":", 1)[1])
    closed = await asyncio.to_thread(metric, port, "lingua_slow_peers_closed_total")
    log["client: never reads"] = (
        f"{lazy_index} utterances with 1 MiB results; peers closed 1013: {closed:g}"
    )


async def echo_node(url: str, tasks: set[asyncio.Task[None]]) -> None:
    """Answers every job at once with 1 MiB of speech (for the non-reading client)."""
    ws = await connect(f"{url}/ws/node", max_size=None)
    await ws.send(register("echo", [("en", "zh")], max_jobs=64))
    await ws.recv()
    tts = base64.b64encode(b"\x00\x01" * (512 * 1024)).decode()

    async def serve() -> None:
        with contextlib.suppress(Exception):
            async for data in ws:
                msg = orjson.loads(data)
                if msg.get("type") == "job_assign":
                    await ws.send(
                        dumps(
                            {
                                "type": "job_result",
                                "job_id": msg["job_id"],
                                "attempt_id": msg.get("attempt_id"),
                                "success": True,
                                "text_translated": "x",
                                "tts_audio": tts,
                                "tts_format": "pcm16",
                                "tts_sample_rate": 16000,
                            }
                        )
                    )

    tasks.add(asyncio.create_task(serve()))


async def hostile_node(url: str, end: float, log: dict[str, str]) -> None:
    """Over the caps (refused), then at the caps: a register with the most pairs the protocol
    takes, heartbeats that repeat every capability field at that size, and pairing requests,
    as fast as the socket takes them."""
    codes = ["".join(c) for c in itertools.product(string.ascii_lowercase, repeat=3)][:300]
    over = [(s, t) for s in codes for t in codes]
    async with connect(f"{url}/ws/node", max_size=None) as ws:
        await ws.send(register("greedy", over))
        log["node: register with 90,000 pairs"] = await first_reply(ws)
    at_cap = [(s, t) for s in codes[:64] for t in codes[:64]]  # MAX_LANGUAGE_PAIRS, 4,096
    ws = await connect(f"{url}/ws/node", max_size=None)
    capped = register("greedy", at_cap)
    await ws.send(capped)
    log["node: register with 4,096 pairs (the cap)"] = await first_reply(ws)
    fields = orjson.loads(capped)
    beat = dumps(
        {
            "type": "node_heartbeat",
            "node_id": "greedy",
            "timestamp": 1,
            "capability_by_type": fields["capability_by_type"],
            "language_capabilities": fields["language_capabilities"],
        }
    )
    pairing = dumps({"type": "pairing_code_request", "node_id": "greedy"})
    sent = Counter[str]()
    replies: Counter[str] = Counter()
    reader = asyncio.create_task(count_replies(ws, replies))
    while time.monotonic() < end and ws.close_code is None:
        for _ in range(50):
            await ws.send(beat)
            await ws.send(pairing)
        sent["heartbeat"] += 50
        sent["pairing_code_request"] += 50
        await asyncio.sleep(0.01)
    reader.cancel()
    log[f"node: heartbeats of {len(beat) // 1024} KiB + pairing floods"] = (
        f"sent {sent['heartbeat']} of each; answers: "
        + ", ".join(f"{k} x{v}" for k, v in sorted(replies.items()))
        + (f"; closed {ws.close_code}" if ws.close_code else "")
    )
    await ws.close()


async def attack(port: int, name: str, seconds: float, peer: Any, url: str) -> None:
    log: dict[str, str] = {}
    under = probe(port, seconds)
    end = time.monotonic() + seconds
    try:
        await asyncio.wait_for(peer(url, end, log), seconds + 20)
    except Exception as exc:  # noqa: BLE001
        # whatever stops a hostile peer (a close, a refusal it did not expect, the time
        # limit) is one of the figures, not a reason to end the benchmark
        log["stopped early"] = repr(exc)[:200]
    print(f"    GET /health under the {name}: {await asyncio.to_thread(summary, under)}")
    for what, answer in log.items():
        print(f"      {what}: {answer}")


async def stall(seconds: float) -> None:
    child = start_scheduler()
    url = f"ws://127.0.0.1:{child.port}"
    tasks: set[asyncio.Task[None]] = set()
    try:
        idle = probe(child.port, 3.0)
        print(f"(b) GET /health idle: {await asyncio.to_thread(summary, idle)}")
        await echo_node(url, tasks)
        await attack(child.port, "hostile client", seconds, hostile_client, url)
        rss, peak = rss_mib(child.proc.pid)
        print(f"    scheduler RSS after it: {rss:.0f} MiB (peak {peak:.0f})")
        print(
            "    bounded by: utterance_index_window 256, flow control 32 utterances / 8 MiB, "
            "peer_outbox_bytes 16 MiB, session_hold_bytes 8 MiB"
        )
        await attack(child.port, "hostile node", seconds, hostile_node, url)
        rss, peak = rss_mib(child.proc.pid)
        print(f"    scheduler RSS after it: {rss:.0f} MiB (peak {peak:.0f})")
        print(
            "    bounded by: the caps on register and heartbeat lists, their rate limits, and "
            "each connection's parse budget (peer_parse_ms_per_s 200, burst 100 ms)"
        )
    finally:
        for task in tasks:
            task.cancel()
        child.stop()


async def main(args: argparse.Namespace) -> None:
    await memory(args.sessions)
    await stall(args.stall_s)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--probe":
        probe_main(int(sys.argv[2]), float(sys.argv[3]))
        raise SystemExit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--stall-s", type=float, default=10.0)
    asyncio.run(main(parser.parse_args()))
    _ = Child  # re-exported type of start_scheduler's result
