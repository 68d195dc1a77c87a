"""The core's hooks for a cluster of instances, driven with events and a fake clock (no Redis,
no sockets): nodes another instance holds, sessions rebuilt from shared state, and the pure
encodings the cluster package stores in Redis."""

from __future__ import annotations

from lingua_protocol import NodeRegister, PipelineConfig, parse_node_message
from lingua_scheduler._cluster.node_view import (
    ViewReader,
    parse_remote,
    published,
    remote_conn,
)
from lingua_scheduler._cluster.rooms import client_conn, handover, parse_client, taken_over
from lingua_scheduler._cluster.shared_sessions import decode, encode
from lingua_scheduler._core.sessions import SessionState
from lingua_scheduler.testing import Harness, node_register
from lingua_scheduler.testing.core_driver import _dump

REMOTE = remote_conn("inst-b", "far")


def _register(node_id: str) -> NodeRegister:
    message = parse_node_message(_dump(node_register(node_id)))
    assert isinstance(message, NodeRegister)
    return message


def test_a_remote_node_is_selected_and_its_job_goes_to_its_link() -> None:
    h = Harness()
    h._apply(h.core.remote_node(REMOTE, _register("far"), None, False, h.now))
    sid = h.open_session("c1")
    h.utter("c1", sid, 0)
    jobs = h.take(REMOTE, "job_assign")
    assert len(jobs) == 1
    h.result(REMOTE, jobs[0])  # its result comes back through the link, as from a node
    assert [m.type for m in h.to("c1")] == ["translation_result"]


def test_a_remote_node_that_leaves_the_view_has_its_job_reassigned() -> None:
    h = Harness()
    h._apply(h.core.remote_node(REMOTE, _register("far"), None, False, h.now))
    sid = h.open_session("c1")
    h.utter("c1", sid, 0)
    assert h.take(REMOTE, "job_assign")
    h.node("conn-near", node_register("near"))
    h._apply(h.core.node_disconnected(REMOTE, h.now))
    assert len(h.to("conn-near", "job_assign")) == 1


def test_a_node_held_here_is_not_replaced_by_another_instances_view() -> None:
    h = Harness()
    h.node("conn-a", node_register("a"))
    assert h.core.remote_node(remote_conn("inst-b", "a"), _register("a"), None, False, h.now) == []
    assert h.core.registry.nodes["a"].conn_id == "conn-a"


def test_an_adopted_session_resumes_after_the_clients_last_result() -> None:
    h = Harness()
    h.node("conn-a", node_register("a"))
    state = SessionState(
        "sess-x", "tok-x", "en", "zh", None, None, PipelineConfig(), False, None, None
    )
    h.core.adopt_session(state, 4, h.now)
    h.client(
        "c9",
        {
            "type": "session_init",
            "src_lang": "en",
            "tgt_lang": "zh",
            "resume_token": "tok-x",
            "last_received_index": 4,
        },
    )
    ack = h.take("c9", "session_init_ack")[0]
    assert ack.session_id == "sess-x"  # type: ignore[attr-defined]
    assert ack.last_delivered_index == 4  # type: ignore[attr-defined]
    h.utter("c9", "sess-x", 5)  # the client sends again what it has no answer for
    h.result("conn-a", h.take("conn-a", "job_assign")[0])
    assert [(m.type, m.utterance_index) for m in h.to("c9")] == [("translation_result", 5)]


def test_shared_encodings_round_trip() -> None:
    state = SessionState(
        "s", "t", "en", "zh", "en-GB", None, PipelineConfig(use_tts=False), True, "n", "Ana"
    )
    assert decode("t", encode(state, "inst")) == (state, "inst")
    assert taken_over(handover(state, 3)) == (state, 3)
    assert parse_remote(remote_conn("i", "node:with:colons")) == ("i", "node:with:colons")
    assert parse_remote("node-123") is None
    assert parse_client(client_conn("i", "session-1")) == ("i", "session-1")
    h = Harness()
    h.node("conn-a", node_register("a"))
    reader = ViewReader()
    node = reader.read("k", published(h.core.registry.nodes["a"]))
    assert node is not None
    assert node.register.node_id == "a"
    assert reader.read("k", published(h.core.registry.nodes["a"])).register is node.register  # type: ignore[union-attr]
    assert reader.read("bad", b"{not json") is None


def test_the_redis_password_never_reaches_logs_or_the_cluster_view() -> None:
    from lingua_scheduler._settings import SchedulerSettings

    shown = SchedulerSettings(redis_url="redis://user:secret@db:6379/0").public_dict()
    assert shown["redis_url"] == "redis://***@db:6379/0"


def test_results_held_elsewhere_are_replayed_once_and_count_as_delivered() -> None:
    from lingua_protocol import TranslationResult

    h = Harness()
    state = SessionState(
        "sess-y", "tok-y", "en", "zh", None, None, PipelineConfig(), False, None, None
    )
    held = [
        TranslationResult(session_id="sess-y", utterance_index=i, text_translated=f"t{i}")
        for i in (3, 4, 5)
    ]
    h.core.adopt_session(state, 3, h.now, held)  # the client has 3 already
    h.client(
        "c1",
        {
            "type": "session_init",
            "src_lang": "en",
            "tgt_lang": "zh",
            "resume_token": "tok-y",
            "last_received_index": 3,
        },
    )
    msgs = h.take("c1")
    assert msgs[0].last_delivered_index == 5  # type: ignore[attr-defined]
    assert [m.utterance_index for m in msgs[1:]] == [4, 5]  # type: ignore[attr-defined]
    h.utter("c1", "sess-y", 5)  # a resend gets the same answer, nothing runs
    assert [m.utterance_index for m in h.take("c1")] == [5]  # type: ignore[attr-defined]


def test_an_adopted_streaming_session_keeps_its_grant_and_takes_chunks() -> None:
    """A client that streamed on a dead instance resumes elsewhere and streams on: the shared
    state carries what its negotiation granted."""
    from lingua_scheduler._cluster.shared_sessions import decode, encode
    from lingua_scheduler.testing import streaming_node_register

    h = Harness()
    h.node("conn-s", streaming_node_register("s", streams=1))
    state = SessionState(
        "sess-s", "tok-s", "en", "en", None, None, PipelineConfig(), False, None, None, True, 300
    )
    state, _ = decode("tok-s", encode(state, "inst-a"))  # as it travels through Redis
    h.core.adopt_session(state, None, h.now)
    h.client(
        "c9",
        {
            "type": "session_init",
            "src_lang": "en",
            "tgt_lang": "en",
            "resume_token": "tok-s",
            "enable_streaming_asr": True,
        },
    )
    ack = h.take("c9", "session_init_ack")[0]
    assert ack.streaming is True  # type: ignore[attr-defined]
    assert ack.partial_update_interval_ms == 300  # type: ignore[attr-defined]
    h.chunk("c9", "sess-s", 0, 0)
    [job] = h.take("conn-s", "job_assign")
    assert job.stream  # type: ignore[attr-defined]
    assert job.partial_update_interval_ms == 300  # type: ignore[attr-defined]
