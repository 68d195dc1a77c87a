"""Peer claims cost the scheduler at most the caps: a heartbeat from a node that registered
the maximum is O(1), heartbeats and pairing-code requests are rate limited per node, and
pairing codes are indexed (issue finding: peer claims cost the scheduler)."""

from __future__ import annotations

import gc
import time
from typing import Any

import pytest
from lingua_protocol import MAX_LANGUAGE_PAIRS, MAX_LANGUAGES
from lingua_scheduler._core import registry as registry_module
from lingua_scheduler._core.capabilities import Capabilities
from lingua_scheduler._core.pairing import PairingService
from lingua_scheduler.testing import Harness, node_register

LANGS = [f"l{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(64)]
WIDEST = node_register(
    "wide",
    pairs=[(s, t) for s in LANGS for t in LANGS][:MAX_LANGUAGE_PAIRS],
    language_capabilities={
        "supported_language_pairs": [{"src": s, "tgt": t} for s in LANGS for t in LANGS][
            :MAX_LANGUAGE_PAIRS
        ],
        "asr_languages": (LANGS * 8)[:MAX_LANGUAGES],
        "tts_languages": (LANGS * 8)[:MAX_LANGUAGES],
    },
)


def _beat(node_id: str, **kw: Any) -> dict[str, Any]:
    return {"type": "node_heartbeat", "node_id": node_id, "timestamp": 1, **kw}


def _count_work(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the capability work: derive() and the O(pairs) pipeline listing."""
    calls = {"derive": 0, "pipelines": 0}
    derive, listing = registry_module.derive, Capabilities._work_out_pipelines

    def counted_derive(message: Any) -> Capabilities:
        calls["derive"] += 1
        return derive(message)

    def counted_listing(self: Capabilities) -> list[str]:
        calls["pipelines"] += 1
        return listing(self)

    monkeypatch.setattr(registry_module, "derive", counted_derive)
    monkeypatch.setattr(Capabilities, "_work_out_pipelines", counted_listing)
    return calls


def test_a_heartbeat_from_the_widest_node_does_no_capability_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = Harness(node_heartbeats_per_s=1000, node_heartbeat_burst=1000)
    calls = _count_work(monkeypatch)
    h.node("conn", WIDEST)
    assert h.take("conn", "node_register_ack")[0].status == "ready"  # type: ignore[attr-defined]
    after_register = dict(calls)
    usage = {"cpu_percent": 10.0, "mem_percent": 10.0}
    for i in range(100):
        h.now += 0.01
        h.node("conn", _beat("wide", resource_usage=usage | {"cpu_percent": float(i % 50)}))
    # Repeating the registered capabilities in a heartbeat changes nothing either.
    h.node("conn", _beat("wide", language_capabilities=WIDEST["language_capabilities"]))
    assert calls == after_register
    assert not h.to("conn", "error")


def test_heartbeat_cost_does_not_grow_with_what_the_node_registered() -> None:
    """Same process, same test: 200 heartbeats of the widest node against 200 of a minimal
    one. Before capability work was kept, each of the widest node's cost milliseconds."""

    def cost(register: dict[str, Any]) -> float:
        h = Harness(node_heartbeats_per_s=1e6, node_heartbeat_burst=1e6)
        h.node("conn", register)
        best = float("inf")
        gc.disable()  # the collector's passes scale with the heap, not with the heartbeat
        try:
            for _ in range(5):
                start = time.perf_counter()
                for _ in range(200):
                    beat = _beat(register["node_id"], resource_usage={"cpu_percent": 5.0})
                    h.node("conn", beat)
                best = min(best, time.perf_counter() - start)
        finally:
            gc.enable()
        return best

    small = cost(node_register("small"))
    wide = cost(WIDEST)
    assert wide < small * 3 + 0.005, (wide, small)


def test_heartbeats_beyond_the_rate_are_refused_as_rate_limited() -> None:
    h = Harness(node_heartbeats_per_s=1.0, node_heartbeat_burst=3)
    h.node("conn", node_register("a"))
    for _ in range(5):
        h.node("conn", _beat("a"))
    errors = h.take("conn", "error")
    assert [e.code for e in errors] == ["RATE_LIMITED", "RATE_LIMITED"]  # type: ignore[attr-defined]
    h.now += 1.0
    h.node("conn", _beat("a"))
    assert not h.take("conn", "error")


def test_pairing_code_requests_are_rate_limited_and_a_node_holds_one_code() -> None:
    h = Harness(pairing_requests_per_min=3)
    h.node("conn", node_register("a"))
    for _ in range(5):
        h.node("conn", {"type": "pairing_code_request", "node_id": "a"})
    codes = h.take("conn", "pairing_code")
    assert len(codes) == 3
    assert [e.code for e in h.take("conn", "error")] == ["RATE_LIMITED"] * 2  # type: ignore[attr-defined]
    assert list(h.core.pairing.codes) == [codes[-1].code]  # type: ignore[attr-defined]
    assert h.core.pairing.by_node == {"a": codes[-1].code}  # type: ignore[attr-defined]


def test_pairing_codes_expire_in_issue_order_without_a_scan() -> None:
    service = PairingService(ttl_s=10.0)
    for i in range(1000):
        service.issue(f"n{i}", None, now=float(i) / 100)
    assert len(service.codes) == 1000
    service.issue("late", None, now=15.0)  # codes issued up to t=5 are gone
    assert len(service.codes) == 500
    assert "n0" not in service.by_node


def test_a_code_is_good_only_for_the_credential_that_asked() -> None:
    service = PairingService()
    code = service.issue("home", "digest-1", now=0.0)
    assert service.redeem(code, 1.0, {"home": "digest-2"}.get) is None
    code = service.issue("home", "digest-1", now=0.0)
    assert service.redeem(code, 1.0, {"home": "digest-1"}.get) == "home"


def test_new_node_ids_are_limited_per_address_so_the_id_store_cannot_be_filled() -> None:
    h = Harness(new_node_ids_per_hour=2)
    for i in range(3):
        h.core.trust.peer_connected(f"conn-{i}", "198.51.100.7")
        h.node(f"conn-{i}", node_register(f"n{i}"))
    assert [m.type for m in h.take("conn-0") + h.take("conn-1")] == ["node_register_ack"] * 2
    refused = h.take("conn-2", "error")
    assert [e.code for e in refused] == ["RATE_LIMITED"]  # type: ignore[attr-defined]
    assert h.core.trust.credentials.store.count() == 2
    h.core.trust.peer_connected("conn-9", "203.0.113.1")  # another address is not affected
    h.node("conn-9", node_register("n9"))
    assert h.take("conn-9", "node_register_ack")
