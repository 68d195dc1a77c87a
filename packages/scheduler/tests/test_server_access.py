"""Who may open what, over real sockets against a real `SchedulerServer`: the operator token
and its lockout, Origin checks, the public cluster view, guess limits per address, the
first-message deadline and the connection limit (issue findings: admin from anywhere,
guessable codes, connections)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from lingua_protocol import Error, NodeControl, PairingCode, PairingCodeRequest, RoomCreateAck
from lingua_scheduler import SchedulerServer, SchedulerSettings
from lingua_scheduler.__main__ import control
from lingua_scheduler.testing import ScriptedClient, ScriptedNode
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

TOKEN = "op-token-for-tests"
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}


async def _running(**settings: Any) -> AsyncIterator[SchedulerServer]:
    server = SchedulerServer(SchedulerSettings(host="127.0.0.1", port=0, **settings))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def server() -> AsyncIterator[SchedulerServer]:
    async for s in _running(admin_token=TOKEN, admin_failures_per_min=3):
        yield s


def _ws(server: SchedulerServer, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def _http(server: SchedulerServer) -> str:
    return f"http://127.0.0.1:{server.port}"


async def _refused(url: str, **kw: Any) -> int:
    with pytest.raises(InvalidStatus) as info:
        async with connect(url, **kw):
            pass
    return info.value.response.status_code


# --- the operator endpoint ---------------------------------------------------------------


async def test_admin_is_off_without_a_configured_token_even_from_loopback() -> None:
    async for server in _running():
        assert await _refused(_ws(server, "/ws/admin")) == 403


async def test_admin_wants_the_bearer_token_and_locks_out_repeated_wrong_ones(
    server: SchedulerServer,
) -> None:
    url = _ws(server, "/ws/admin")
    assert await _refused(url) == 401
    assert await _refused(url + f"?token={TOKEN}") == 401  # a token in the URL is not read
    assert await _refused(url, additional_headers={"Authorization": "Bearer wrong"}) == 401
    # Three wrong tokens a minute from this address: now even the right one waits.
    assert await _refused(url, additional_headers=OPERATOR) == 429
    async with httpx.AsyncClient(base_url=_http(server)) as http:
        assert (await http.get("/api/v1/cluster", headers=OPERATOR)).status_code == 429


async def test_the_control_command_sends_the_token_as_a_header(server: SchedulerServer) -> None:
    node = ScriptedNode(_ws(server, "/ws/node"), "a")
    await node.start()
    url = f"ws://127.0.0.1:{server.port}"
    code = await asyncio.to_thread(control, ["a", "drain", "--url", url, "--token", TOKEN])
    assert code == 0
    await node.wait_received(lambda m: isinstance(m, NodeControl))
    assert server.core.registry.nodes["a"].draining
    await node.close()


async def test_node_control_names_its_node_in_a_declared_field(server: SchedulerServer) -> None:
    async with connect(_ws(server, "/ws/admin"), additional_headers=OPERATOR) as ws:
        await ws.send(json.dumps({"type": "node_control", "command": "drain"}))
        reply = json.loads(await ws.recv())
    assert reply["code"] == "INVALID_MESSAGE"
    assert reply["details"]["field"] == "node_id"
    assert "node_id" in NodeControl.model_fields


# --- Origin ----------------------------------------------------------------------------------


async def test_a_web_page_cannot_open_node_or_admin_connections(server: SchedulerServer) -> None:
    page = {"Origin": "https://evil.example"}
    assert await _refused(_ws(server, "/ws/node"), additional_headers=page) == 403
    admin_headers = page | OPERATOR
    assert await _refused(_ws(server, "/ws/admin"), additional_headers=admin_headers) == 403
    async with connect(_ws(server, "/ws/session"), additional_headers=page):
        pass  # any page may host the web client by default


async def test_session_origins_can_be_restricted() -> None:
    async for server in _running(session_origins=["https://app.example"]):
        url = _ws(server, "/ws/session")
        bad = {"Origin": "https://evil.example"}
        assert await _refused(url, additional_headers=bad) == 403
        async with connect(url, additional_headers={"Origin": "https://app.example"}):
            pass


# --- the cluster view ------------------------------------------------------------------------


async def test_the_public_cluster_view_has_no_codes_ids_or_pairings(
    server: SchedulerServer,
) -> None:
    node = ScriptedNode(_ws(server, "/ws/node"), "secret-node-id", accept_public=False)
    await node.start()
    assert node.ws is not None
    await node.ws.send(PairingCodeRequest(node_id="secret-node-id").to_json())
    pairing = await node.next_message()
    assert isinstance(pairing, PairingCode)
    client = ScriptedClient(_ws(server, "/ws/session"), pairing_code=pairing.code)
    await client.start()
    assert client.ws is not None
    assert client.session_id is not None
    await client.send_raw(json.dumps({"type": "room_create", "display_name": "Ann"}))
    room = await client.recv()
    assert isinstance(room, RoomCreateAck)
    async with httpx.AsyncClient(base_url=_http(server)) as http:
        public = await http.get("/api/v1/cluster")
        full = await http.get("/api/v1/cluster", headers=OPERATOR)
    assert public.status_code == 200
    for secret in ("secret-node-id", client.session_id, room.room_code, "Ann"):
        assert secret not in public.text
        assert secret in full.text
    body = public.json()
    assert body["sessions"] == 1
    assert body["rooms"] == 1
    assert body["nodes_by_status"]
    assert {"src": "en", "tgt": "zh"} in body["nodes"][0]["language_pairs"]
    await client.close()
    await node.close()


# --- guesses per address, not per connection -----------------------------------------------


async def test_wrong_room_codes_are_limited_per_address_across_reconnects() -> None:
    async for server in _running(wrong_codes_per_min=3):
        codes = []
        for attempt in range(5):  # a new connection each time: the count must not reset
            client = ScriptedClient(_ws(server, "/ws/session"))
            await client.start()
            await client.send_raw(json.dumps({"type": "room_join", "room_code": f"{attempt:06d}"}))
            reply = await client.recv()
            assert isinstance(reply, Error)
            codes.append(reply.code)
            await client.close()
        assert codes == ["ROOM_NOT_FOUND"] * 3 + ["RATE_LIMITED"] * 2


async def test_wrong_pairing_codes_are_limited_per_address_across_reconnects() -> None:
    async for server in _running(wrong_codes_per_min=2):
        codes = []
        for attempt in range(4):
            client = ScriptedClient(_ws(server, "/ws/session"), pairing_code=f"{attempt:06d}")
            reply = await client.start()
            assert isinstance(reply, Error)
            codes.append(reply.code)
            await client.close()
        assert codes == ["INVALID_PAIRING_CODE"] * 2 + ["RATE_LIMITED"] * 2


async def test_wrong_codes_are_limited_in_total_too() -> None:
    """Many addresses together: simulated in the core, since loopback is one address."""
    async for server in _running(wrong_codes_per_min=100, wrong_codes_per_min_total=2):
        trust = server.core.trust
        assert trust.guesses.may_guess("10.0.0.1", 0.0)
        trust.guesses.wrong("10.0.0.1", 0.0)
        trust.guesses.wrong("10.0.0.2", 0.0)
        assert not trust.guesses.may_guess("10.0.0.3", 0.0)


# --- connections -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "first"), [("/ws/node", "node_register"), ("/ws/session", "session_init")]
)
async def test_a_connection_that_never_says_who_it_is_is_closed(
    path: str, first: str, caplog: pytest.LogCaptureFixture
) -> None:
    async for server in _running(first_message_timeout_s=0.2):
        async with connect(_ws(server, path)) as ws:
            if path == "/ws/node":  # talking without registering does not count
                await ws.send(
                    json.dumps({"type": "node_heartbeat", "node_id": "x", "timestamp": 1})
                )

            async def read_until_closed() -> None:
                async with asyncio.timeout(5):
                    while True:
                        await ws.recv()

            with pytest.raises(ConnectionClosed) as info:
                await read_until_closed()
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1008
        assert first in info.value.rcvd.reason


async def test_a_registered_node_outlives_the_first_message_deadline() -> None:
    async for server in _running(first_message_timeout_s=0.2):
        node = ScriptedNode(_ws(server, "/ws/node"), "a", heartbeat_s=60)
        await node.start()
        client = ScriptedClient(_ws(server, "/ws/session"))
        await client.start()
        await asyncio.sleep(0.5)  # past the deadline: nothing else can be awaited for "not closed"
        await client.utter(0)
        assert (await client.recv()).type == "translation_result"
        await client.close()
        await node.close()


async def test_over_the_connection_limit_the_upgrade_gets_503(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async for server in _running(max_connections=2):
        url = _ws(server, "/ws/session")
        async with connect(url), connect(url):
            caplog.set_level(logging.WARNING, "lingua.scheduler.server")
            statuses = [await _refused(url) for _ in range(5)]
            async with httpx.AsyncClient(base_url=_http(server)) as http:
                assert (await http.get("/health")).status_code == 200
        assert statuses == [503] * 5
        lines = [r for r in caplog.records if "connection limit" in r.getMessage()]
        assert len(lines) == 1  # one line per interval, not one per refusal


async def test_behind_a_trusted_proxy_limits_follow_the_forwarded_client_address() -> None:
    async for server in _running(wrong_codes_per_min=1, trusted_proxies=["127.0.0.1"]):
        codes = []
        for client_address in ("198.51.100.1", "198.51.100.2", "198.51.100.1"):
            forwarded = {"X-Forwarded-For": f"203.0.113.9, {client_address}"}
            async with connect(_ws(server, "/ws/session"), additional_headers=forwarded) as ws:
                await ws.send(
                    json.dumps(
                        {
                            "type": "session_init",
                            "src_lang": "en",
                            "tgt_lang": "zh",
                            "pairing_code": "000000",
                        }
                    )
                )
                codes.append(json.loads(await ws.recv())["code"])
        assert codes == ["INVALID_PAIRING_CODE", "INVALID_PAIRING_CODE", "RATE_LIMITED"]


async def test_one_address_cannot_take_every_connection() -> None:
    """Loopback is not held to the limit (a local proxy carries everyone): the clients are
    told apart by a trusted proxy's X-Forwarded-For."""
    settings = {"max_connections_per_address": 2, "trusted_proxies": ["127.0.0.1"]}
    async for server in _running(**settings):
        url = _ws(server, "/ws/session")
        one = {"X-Forwarded-For": "198.51.100.1"}
        async with connect(url, additional_headers=one), connect(url, additional_headers=one):
            assert await _refused(url, additional_headers=one) == 429
            other = {"X-Forwarded-For": "198.51.100.2"}
            async with connect(url, additional_headers=other), connect(url), connect(url):
                pass  # another client, and loopback itself, still get in
