"""One connection's messages may take only its share of the event loop to parse."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import string

import pytest
from lingua_scheduler._parse_budget import ParseBudget
from lingua_scheduler.testing import running_scheduler
from websockets.asyncio.client import connect


def test_a_connection_in_debt_waits_until_it_has_paid_it_back() -> None:
    budget = ParseBudget(rate_ms_per_s=100.0, burst_ms=10.0)
    budget.spend(0.004)
    assert budget.wait_s(now=0.0) == 0.0  # 6 ms left of the burst
    budget.spend(0.026)  # 20 ms in debt
    assert budget.wait_s(now=0.0) == pytest.approx(0.2)
    assert budget.wait_s(now=0.1) == pytest.approx(0.1)
    assert budget.wait_s(now=0.2) == 0.0


def test_the_bucket_refills_to_its_burst_and_no_further() -> None:
    budget = ParseBudget(rate_ms_per_s=100.0, burst_ms=10.0)
    budget.spend(0.005)
    assert budget.wait_s(now=0.0) == 0.0
    assert budget.wait_s(now=60.0) == 0.0
    assert budget.tokens_ms == 10.0


async def test_heartbeats_at_the_caps_are_read_at_the_budget_and_none_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    codes = ["".join(c) for c in itertools.product(string.ascii_lowercase, repeat=3)][:64]
    caps = {
        "capability_by_type": [{"type": t, "ready": True} for t in ("ASR", "NMT", "TTS")],
        "language_capabilities": {
            "supported_language_pairs": [{"src": s, "tgt": t} for s in codes for t in codes]
        },
    }
    register = {"type": "node_register", "node_id": "greedy", "max_concurrent_jobs": 1, **caps}
    beat = {"type": "node_heartbeat", "node_id": "greedy", "timestamp": 1, **caps}
    caplog.set_level(logging.WARNING, "lingua.scheduler")
    async with (
        running_scheduler(peer_parse_ms_per_s=200.0, peer_parse_burst_ms=5.0) as sched,
        connect(sched.node_url, max_size=None) as ws,
    ):
        await ws.send(json.dumps(register))
        assert json.loads(await ws.recv())["type"] == "node_register_ack"
        for _ in range(12):
            await ws.send(json.dumps(beat))
        await ws.send(json.dumps({"type": "pairing_code_request", "node_id": "greedy"}))
        answers = []
        async with asyncio.timeout(30):  # messages are handled in order: the code comes last
            while not answers or answers[-1]["type"] != "pairing_code":
                answers.append(json.loads(await ws.recv()))
    # beyond the heartbeat burst, RATE_LIMITED (how many depends on how long reading took)
    assert {a.get("code") for a in answers[:-1]} <= {"RATE_LIMITED"}
    assert any("/ws/node parse budget" in r.getMessage() for r in caplog.records)
