"""A node's `job_ack` for another instance's job is held a moment so that an answer ready at
once crosses with it in one inbox entry (`_cluster/ack_hold.py`): the pure rule with the clock
passed in, and the node's instance's relaying with a recording test double for the relay (no
Redis, no sockets, no sleeping)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from lingua_protocol import AsrPartial, JobAck, JobResult, Message
from lingua_scheduler._cluster.ack_hold import AckHold
from lingua_scheduler._cluster.instance import Cluster
from lingua_scheduler._cluster.relay import pack_header, unpack_all
from lingua_scheduler._settings import SchedulerSettings

WINDOW = 0.002


def test_an_ack_is_held_until_its_window_ends_then_goes_alone() -> None:
    hold = AckHold(WINDOW)
    assert hold.hold("j1", "a", "n1", b"ack1", now=10.0) == []
    assert hold.next_due() == pytest.approx(10.002)
    assert hold.due(10.001) == []
    [ack] = hold.due(10.002)
    assert (ack.job_id, ack.origin, ack.node_id, ack.text) == ("j1", "a", "n1", b"ack1")
    assert len(hold) == 0
    assert hold.next_due() is None


def test_an_answer_within_the_window_takes_the_held_ack() -> None:
    hold = AckHold(WINDOW)
    hold.hold("j1", "a", "n1", b"ack1", now=10.0)
    hold.hold("j2", "a", "n1", b"ack2", now=10.001)
    taken = hold.take("j2")
    assert taken is not None
    assert taken.text == b"ack2"
    assert hold.take("j2") is None  # taken once: it is not sent again when its window ends
    assert [a.job_id for a in hold.due(10.01)] == ["j1"]


def test_acks_come_due_oldest_first() -> None:
    hold = AckHold(WINDOW)
    for n in range(3):
        hold.hold(f"j{n}", "a", "n1", b"ack", now=10.0 + n * 0.001)
    assert [a.job_id for a in hold.due(10.0035)] == ["j0", "j1"]
    assert [a.job_id for a in hold.drain()] == ["j2"]


def test_a_zero_window_holds_nothing() -> None:
    hold = AckHold(0.0)
    [ack] = hold.hold("j1", "a", "n1", b"ack1", now=10.0)
    assert ack.job_id == "j1"
    assert len(hold) == 0


def test_a_second_ack_for_a_held_job_sends_the_first_at_once() -> None:
    hold = AckHold(WINDOW)
    hold.hold("j1", "a", "n1", b"first", now=10.0)
    [earlier] = hold.hold("j1", "a", "n1", b"second", now=10.001)
    assert earlier.text == b"first"
    assert [a.text for a in hold.drain()] == [b"second"]


def test_beyond_max_held_the_oldest_goes_at_once_never_dropped() -> None:
    hold = AckHold(WINDOW, max_held=2)
    hold.hold("j1", "a", "n1", b"1", now=10.0)
    hold.hold("j2", "a", "n1", b"2", now=10.0)
    [out] = hold.hold("j3", "a", "n1", b"3", now=10.0)
    assert out.job_id == "j1"
    assert len(hold) == 2


def test_an_entry_of_several_messages_unpacks_in_order() -> None:
    header = pack_header("from_node", "inst-b", "n1")
    entries = unpack_all([b"h", header, b"m", b"ack", b"h", header, b"m", b"result"])
    assert [(e.sender, e.node_id, e.payload) for e in entries] == [
        ("inst-b", "n1", b"ack"),
        ("inst-b", "n1", b"result"),
    ]


@pytest.mark.parametrize(
    "fields",
    [[], [b"h", b"[]"], [b"m", b"x", b"h", b"y"], [b"h", b"not json", b"m", b"x"]],
)
def test_an_entry_of_another_shape_is_refused(fields: list[bytes]) -> None:
    with pytest.raises(ValueError, match="inbox entry"):
        unpack_all(fields)


# --- the node's instance relaying its node's answers ----------------------------------------


@dataclass
class RecordingRelay:
    """Test double for `Relay`: records the entries the cluster would write."""

    entries: list[tuple[str, list[bytes]]] = field(default_factory=list)

    def send(self, instance: str, kind: str, node_id: str, payload: bytes, **_: str) -> None:
        self.entries.append((instance, [payload]))

    def send_all(self, instance: str, kind: str, node_id: str, payloads: list[bytes]) -> None:
        self.entries.append((instance, list(payloads)))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _cluster(hold_ms: float = 2.0) -> tuple[Cluster, RecordingRelay, Clock]:
    clock = Clock()
    settings = SchedulerSettings(redis_url="redis://127.0.0.1:1/0", cluster_ack_hold_ms=hold_ms)
    cluster = Cluster(settings, clock)
    relay = RecordingRelay()
    cluster.relay = relay  # type: ignore[assignment]
    cluster._relayed["j1"] = "inst-a"  # B handed job j1 of instance A to its node n1
    return cluster, relay, clock


def _relay(cluster: Cluster, message: Message) -> bytes:
    data = message.to_json_bytes()
    assert cluster.relays("n1", message, data)
    return data


ACK = JobAck(job_id="j1", node_id="n1")
RESULT = JobResult(job_id="j1", node_id="n1", success=True)


async def test_an_ack_and_a_result_ready_together_cross_in_one_entry() -> None:
    cluster, relay, _ = _cluster()
    ack = _relay(cluster, ACK)
    assert relay.entries == []  # held for its window
    result = _relay(cluster, RESULT)
    assert relay.entries == [("inst-a", [ack, result])]
    cluster._release_acks()  # its timer: nothing left to send
    assert relay.entries == [("inst-a", [ack, result])]


async def test_a_slow_nodes_ack_goes_alone_when_its_window_ends() -> None:
    cluster, relay, clock = _cluster()
    ack = _relay(cluster, ACK)
    assert cluster._acks_timer is not None  # armed for the window's end
    clock.now += 0.002
    cluster._release_acks()
    assert relay.entries == [("inst-a", [ack])]
    result = _relay(cluster, RESULT)  # later: alone, at once
    assert relay.entries == [("inst-a", [ack]), ("inst-a", [result])]


async def test_a_partial_takes_the_held_ack_with_it_in_order() -> None:
    cluster, relay, _ = _cluster()
    ack = _relay(cluster, ACK)
    partial = _relay(cluster, AsrPartial(job_id="j1", session_id="s", utterance_index=0, text="he"))
    result = _relay(cluster, RESULT)
    assert relay.entries == [("inst-a", [ack, partial]), ("inst-a", [result])]


async def test_with_a_zero_window_every_answer_goes_at_once() -> None:
    cluster, relay, _ = _cluster(hold_ms=0)
    ack = _relay(cluster, ACK)
    result = _relay(cluster, RESULT)
    assert relay.entries == [("inst-a", [ack]), ("inst-a", [result])]
