"""`--file` mode keeps within the window the scheduler states, and a RATE_LIMITED answer is
retried, not reported. The scheduler here is a scripted test double (a real WebSocket server
in this process) that states a window of two utterances and enforces it."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator

import pytest
from lingua_client._files import run_files
from lingua_protocol import (
    Error,
    SessionInit,
    SessionInitAck,
    TranslationResult,
    Utterance,
    parse_client_message,
)
from websockets.asyncio.server import ServerConnection, serve

from .client_support import SPEECH


class ScriptedScheduler:
    """Acks with `max_in_flight_utterances=window`; answers each utterance after `delay_s`;
    answers RATE_LIMITED beyond the window and, once, for `refuse_once` (as a scheduler whose
    token bucket ran dry would)."""

    def __init__(self, window: int, delay_s: float = 0.05, refuse_once: int | None = None):
        self.window = window
        self.delay_s = delay_s
        self.refuse_once = refuse_once
        self.in_flight: set[int] = set()
        self.max_seen = 0
        self.received: list[int] = []
        self.over_window = 0
        self.port = 0

    async def handler(self, ws: ServerConnection) -> None:
        init = parse_client_message(await ws.recv())
        assert isinstance(init, SessionInit)
        await ws.send(
            SessionInitAck(
                session_id="s1", resume_token="t1", max_in_flight_utterances=self.window
            ).to_json()
        )
        async with asyncio.TaskGroup() as tasks:
            async for data in ws:
                m = parse_client_message(data)
                if not isinstance(m, Utterance):
                    continue
                i = m.utterance_index
                self.received.append(i)
                if len(self.in_flight) >= self.window or i == self.refuse_once:
                    self.over_window += i != self.refuse_once
                    self.refuse_once = None
                    await ws.send(
                        Error(
                            code="RATE_LIMITED",
                            message="slow down",
                            session_id="s1",
                            utterance_index=i,
                        ).to_json()
                    )
                    continue
                self.in_flight.add(i)
                self.max_seen = max(self.max_seen, len(self.in_flight))
                tasks.create_task(self.answer(ws, i))

    async def answer(self, ws: ServerConnection, index: int) -> None:
        await asyncio.sleep(self.delay_s)  # the scripted node's work time
        self.in_flight.discard(index)
        await ws.send(
            TranslationResult(
                session_id="s1", utterance_index=index, text_translated=f"t{index}"
            ).to_json()
        )


@pytest.fixture
async def scripted() -> AsyncIterator[ScriptedScheduler]:
    sched = ScriptedScheduler(window=2, refuse_once=3)
    async with serve(sched.handler, "127.0.0.1", 0) as server:
        sched.port = next(iter(server.sockets)).getsockname()[1]
        yield sched


async def test_file_mode_keeps_within_the_window_and_retries_rate_limited(
    scripted: ScriptedScheduler,
) -> None:
    out = io.StringIO()
    files = [SPEECH / n for n in ("weather.wav", "report.wav", "market.wav")] * 3
    code = await run_files(
        f"ws://127.0.0.1:{scripted.port}/ws/session",
        files,
        src="en",
        tgt="en",
        as_json=True,
        out=out,
    )
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert code == 0
    assert [r["utterance_index"] for r in rows] == list(range(9))
    assert all("error" not in r for r in rows)
    assert scripted.max_seen == 2
    assert scripted.over_window == 0
    assert scripted.received.count(3) == 2  # refused once, sent again under the same index
