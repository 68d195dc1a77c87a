"""Helpers shared by the client tests (imported by name, so not in conftest)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from lingua_client._connection import LinkStatus, SessionConnection
from lingua_protocol import JobAssign, Message, SessionInit, read_wav
from lingua_scheduler import SchedulerServer
from lingua_scheduler.testing import ScriptedNode

SPEECH = Path(__file__).resolve().parents[3] / "tests" / "data" / "speech"
SILENCE = b"\x00\x00" * 1600
"""100 ms of 16 kHz PCM16 silence: an utterance the scripted node answers like any other."""


def clip(name: str, trim_pads: bool = False) -> np.ndarray:
    audio, rate = read_wav(SPEECH / name)
    assert rate == 16000
    return audio[4000:-4000] if trim_pads else audio


class Sched:
    def __init__(self, server: SchedulerServer) -> None:
        self.server = server
        self.session_url = f"ws://127.0.0.1:{server.port}/ws/session"
        self.node_url = f"ws://127.0.0.1:{server.port}/ws/node"
        self.nodes: list[ScriptedNode] = []

    async def node(self, node_id: str = "n1", **kw: Any) -> ScriptedNode:
        node = ScriptedNode(self.node_url, node_id, pairs=[("en", "en"), ("auto", "en")], **kw)
        await node.start()
        self.nodes.append(node)
        return node


class Reports:
    """What a SessionConnection reports to its caller (messages and link statuses), with a
    wait that wakes on each report instead of polling."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.statuses: list[LinkStatus] = []
        self._changed = asyncio.Event()

    def message(self, message: Message) -> None:
        self.messages.append(message)
        self._changed.set()

    def status(self, status: LinkStatus) -> None:
        self.statuses.append(status)
        self._changed.set()

    async def until(self, check: Callable[[], object], timeout_s: float = 5.0) -> None:
        """Return once `check()` is true; it is tried again after every report."""
        async with asyncio.timeout(timeout_s):
            while not check():
                self._changed.clear()
                await self._changed.wait()


def reconnecting_session(url: str, reports: Reports, **kw: Any) -> SessionConnection:
    """An en->en session that tells `reports` everything and retries within 50 ms at first, so
    the reconnect tests spend no time in backoff."""
    return SessionConnection(
        url,
        SessionInit(src_lang="en", tgt_lang="en"),
        reports.message,
        on_status=reports.status,
        reconnect_min_s=0.05,
        **kw,
    )


async def first_answered(
    conn: SessionConnection, node: ScriptedNode, reports: Reports, count: int
) -> list[JobAssign]:
    """Say `count` utterances, let the holding `node` answer the first and wait until the
    client has that answer; returns the node's jobs (the rest still held)."""
    for _ in range(count):
        await conn.send_audio(SILENCE)
    jobs = await node.wait_jobs(count)
    await node.release(jobs[:1])
    await reports.until(lambda: reports.messages)
    return jobs
