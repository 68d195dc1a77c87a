"""Cluster-wide stores: two scheduler instances sharing a real redis-server agree on node
credentials, pairing codes and rate limits (real sockets, scripted test-double peers)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from lingua_protocol import Error, PairingCode, PairingCodeRequest, SessionInitAck
from lingua_scheduler.testing import Running, ScriptedClient, running_instances
from lingua_scheduler.testing.redis_server import RedisServer, redis_available

pytestmark = pytest.mark.skipif(not redis_available(), reason="needs redis-server")


@pytest.fixture
async def pair(redis: RedisServer) -> AsyncIterator[tuple[Running, Running]]:
    """Two instances of one cluster (wrong codes: 4 per minute per address)."""
    async with running_instances(2, redis_url=redis.url, wrong_codes_per_min=4.0) as (a, b):
        yield a, b


async def _pairing_code(sched: Running, node_id: str) -> str:
    node = await sched.node(node_id, accept_public=False)
    assert node.ws is not None
    await node.ws.send(PairingCodeRequest(node_id=node_id).to_json())
    reply = await node.next_message()
    assert isinstance(reply, PairingCode)
    return reply.code


async def _open(sched: Running, **init: object) -> SessionInitAck | Error:
    client = ScriptedClient(sched.session_url, "en", "zh", **init)
    reply = await client.start()
    await client.close()
    assert isinstance(reply, SessionInitAck | Error)
    return reply


async def test_pairing_code_issued_on_one_instance_is_redeemed_once_on_another(
    pair: tuple[Running, Running],
) -> None:
    a, b = pair
    code = await _pairing_code(a, "private")
    first = await _open(b, pairing_code=code)
    assert isinstance(first, SessionInitAck)
    assert first.assigned_node_id == "private"
    again = await _open(a, pairing_code=code)  # single use in the whole cluster
    assert isinstance(again, Error)
    assert again.code == "INVALID_PAIRING_CODE"


async def test_node_credential_bound_on_one_instance_is_enforced_on_another(
    pair: tuple[Running, Running],
) -> None:
    a, b = pair
    first = await a.node("n1")
    issued = first.credential
    assert issued is not None
    await first.close()
    impostor = await b.node("n1", credential="x" * 43)
    assert isinstance(impostor.ack_message, Error)
    assert impostor.ack_message.code == "UNAUTHORIZED"
    bare = await b.node("n1")  # no secret at all for a bound id
    assert isinstance(bare.ack_message, Error)
    assert bare.ack_message.code == "UNAUTHORIZED"
    rightful = await b.node("n1", credential=issued)
    assert rightful.ack_message is not None
    assert rightful.ack_message.type == "node_register_ack"


async def test_wrong_code_limit_holds_across_instances(pair: tuple[Running, Running]) -> None:
    a, b = pair
    codes = []
    for sched in (a, a, b, b, a):  # 4 wrong codes a minute from this address, cluster-wide
        reply = await _open(sched, pairing_code="000000")
        assert isinstance(reply, Error)
        codes.append(reply.code)
    assert codes == ["INVALID_PAIRING_CODE"] * 4 + ["RATE_LIMITED"]
