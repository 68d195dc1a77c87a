"""Core rules: readiness, selection, failover, ordering. Fake clock, no sockets, no sleeping."""

from __future__ import annotations

from lingua_protocol import JobAssign
from lingua_scheduler.testing import REFERENCE_REGISTER, Harness, node_register


def test_reference_node_is_ready_and_gets_both_directions() -> None:
    h = Harness()
    h.node("n1", REFERENCE_REGISTER)
    ack = h.take("n1", "node_register_ack")[0]
    assert ack.status == "ready"
    sid = h.open_session("c1", "en", "zh")
    pipeline = {"use_asr": True, "use_nmt": True, "use_tts": True}
    h.utter("c1", sid, 0, src_lang="en", tgt_lang="zh", pipeline=pipeline)
    h.utter("c1", sid, 1, src_lang="zh", tgt_lang="en", pipeline=pipeline)
    jobs = h.take("n1", "job_assign")
    assert [(j.src_lang, j.tgt_lang) for j in jobs] == [("en", "zh"), ("zh", "en")]
    assert h.to("c1", "error") == []


def test_node_without_a_complete_pipeline_waits_in_registering() -> None:
    h = Harness()
    h.node("n1", node_register("a", pairs=(), capability_by_type=[{"type": "ASR", "ready": True}]))
    ack = h.take("n1", "node_register_ack")[0]
    assert ack.status == "registering"
    assert "translation path" in ack.status_reason
    h.node(
        "n1",
        {
            "type": "node_heartbeat",
            "node_id": "a",
            "timestamp": 1,
            "capability_by_type": [{"type": "ASR", "ready": True}, {"type": "NMT", "ready": True}],
            "language_capabilities": {"supported_language_pairs": [{"src": "en", "tgt": "zh"}]},
        },
    )
    assert h.core.registry.nodes["a"].status == "ready"


def test_no_eligible_node_is_an_error_naming_pair_and_index() -> None:
    h = Harness()
    h.node("n1", node_register("a", pairs=(("zh", "en"),)))
    sid = h.open_session("c1", "en", "fr")
    h.utter("c1", sid, 3)
    err = h.take("c1", "error")[0]
    assert err.code == "NO_AVAILABLE_NODE"
    assert err.utterance_index == 3
    assert "en->fr" in err.message


def test_thirty_jobs_spread_by_least_in_flight() -> None:
    h = Harness(utterance_burst=100, sticky_nodes=False)
    for n in ("a", "b", "c"):
        h.node(f"conn-{n}", node_register(n, max_concurrent_jobs=20))
    sid = h.open_session("c1")
    for i in range(30):
        h.utter("c1", sid, i)
    counts = {n: len(h.to(f"conn-{n}", "job_assign")) for n in ("a", "b", "c")}
    assert counts == {"a": 10, "b": 10, "c": 10}


def test_ties_are_broken_by_lower_reported_load() -> None:
    h = Harness()
    h.node("conn-a", node_register("a"))
    h.node("conn-b", node_register("b"))
    h.node(
        "conn-a",
        {
            "type": "node_heartbeat",
            "node_id": "a",
            "timestamp": 1,
            "resource_usage": {"cpu_percent": 80.0},
        },
    )
    h.node(
        "conn-b",
        {
            "type": "node_heartbeat",
            "node_id": "b",
            "timestamp": 1,
            "resource_usage": {"cpu_percent": 10.0},
        },
    )
    sid = h.open_session("c1")
    h.utter("c1", sid, 0)
    assert len(h.to("conn-b", "job_assign")) == 1


def _sticky_setup(sticky: bool) -> tuple[Harness, str, str, str]:
    """A session whose first utterance ran on one node, which then reports a higher load than
    the other: without stickiness the other node is the better choice."""
    h = Harness(sticky_nodes=sticky)
    h.node("conn-a", node_register("a"))
    h.node("conn-b", node_register("b"))
    sid = h.open_session("c1")
    h.utter("c1", sid, 0)
    first = "conn-a" if h.to("conn-a", "job_assign") else "conn-b"
    other = "conn-b" if first == "conn-a" else "conn-a"
    h.result(first, h.take(first, "job_assign")[0])
    for conn, cpu in ((first, 80.0), (other, 5.0)):
        beat = {"type": "node_heartbeat", "node_id": conn[-1], "timestamp": 1}
        h.node(conn, {**beat, "resource_usage": {"cpu_percent": cpu}})
    return h, sid, first, other


def test_sticky_node_is_preferred_while_eligible_even_when_another_is_less_loaded() -> None:
    h, sid, first, other = _sticky_setup(sticky=True)
    for index in range(1, 4):
        h.utter("c1", sid, index)
        h.result(first, h.take(first, "job_assign")[0])
    assert h.to(other, "job_assign") == []
    assert [m.utterance_index for m in h.to("c1", "translation_result")] == [0, 1, 2, 3]


def test_without_stickiness_the_same_session_goes_to_the_less_loaded_node() -> None:
    """The control for the test above: the setup alone does not send jobs to the first node."""
    h, sid, first, other = _sticky_setup(sticky=False)
    for index in range(1, 4):
        h.utter("c1", sid, index)
        h.result(other, h.take(other, "job_assign")[0])
    assert h.to(first, "job_assign") == []


def test_a_sticky_node_that_is_full_is_passed_over() -> None:
    h, sid, first, other = _sticky_setup(sticky=True)
    for index in range(1, 6):  # max_concurrent_jobs is 4: the fifth goes elsewhere
        h.utter("c1", sid, index)
    assert len(h.to(first, "job_assign")) == 4
    assert [j.utterance_index for j in h.to(other, "job_assign")] == [5]


def test_degraded_node_is_used_only_when_no_ready_node_fits() -> None:
    h = Harness()
    h.node("conn-a", node_register("a"))
    h.node(
        "conn-a",
        {
            "type": "node_heartbeat",
            "node_id": "a",
            "timestamp": 1,
            "resource_usage": {"cpu_percent": 99.0},
        },
    )
    assert h.core.registry.nodes["a"].status == "degraded"
    sid = h.open_session("c1")
    h.utter("c1", sid, 0)
    assert len(h.take("conn-a", "job_assign")) == 1  # only node: degraded is used
    h.node("conn-b", node_register("b"))
    h.utter("c1", sid, 1)
    assert len(h.to("conn-b", "job_assign")) == 1
    assert h.to("conn-a", "job_assign") == []


def test_draining_node_gets_no_new_jobs_but_finishes_running_ones() -> None:
    h = Harness()
    h.node("conn-a", node_register("a"))
    sid = h.open_session("c1")
    h.utter("c1", sid, 0)
    job = h.take("conn-a", "job_assign")[0]
    h.node("conn-a", {"type": "node_heartbeat", "node_id": "a", "timestamp": 1, "draining": True})
    assert h.core.registry.nodes["a"].status == "draining"
    h.utter("c1", sid, 1)
    assert h.to("conn-a", "job_assign") == []
    h.result("conn-a", job)
    assert [(m.type, m.utterance_index) for m in h.to("c1")] == [
        ("translation_result", 0),
        ("error", 1),
    ]
    assert h.to("c1", "error")[0].code == "NO_AVAILABLE_NODE"


def test_operator_drain_sends_node_control() -> None:
    h = Harness()
    h.node("conn-a", node_register("a"))
    h._apply(h.core.control_node("a", "drain", h.now))
    assert h.to("conn-a", "node_control")[0].command == "drain"
    assert h.core.registry.nodes["a"].status == "draining"


def test_ack_timeout_reassigns_and_cancels_the_silent_node() -> None:
    h = Harness(ack_timeout_s=5.0)
    h.node("conn-a", node_register("a"))
    sid = h.open_session("c1")
    h.utter("c1", sid, 0)
    first = h.take("conn-a", "job_assign")[0]
    h.node("conn-b", node_register("b"))
    h.advance(4.9)
    assert h.to("conn-b", "job_assign") == []
    h.advance(0.2)
    assert h.to("conn-a", "job_cancel")[0].job_id == first.job_id
    second = h.take("conn-b", "job_assign")[0]
    assert second.job_id == first.job_id
    assert second.attempt_id != first.attempt_id
    h.result("conn-b", second)
    assert len(h.to("c1", "translation_result")) == 1


def test_job_timeout_counts_audio_length() -> None:
    h = Harness(job_timeout_s=30.0, job_timeout_per_audio_s=2.0)
    h.node("conn-a", node_register("a"))
    h.node("conn-b", node_register("b"))
    sid = h.open_session("c1")
    h.utter("c1", sid, 0)  # 1 s of audio: 32 s allowed after the ack
    conn = "conn-a" if h.to("conn-a", "job_assign") else "conn-b"
    other = "conn-b" if conn == "conn-a" else "conn-a"
    job = h.take(conn, "job_assign")[0]
    h.node(conn, {"type": "job_ack", "job_id": job.job_id, "attempt_id": job.attempt_id})
    h.advance(31.0)
    assert h.to(conn, "job_cancel") == []
    h.advance(1.5)
    assert h.to(conn, "job_cancel")
    assert h.to(other, "job_assign")


def test_disconnected_node_has_its_jobs_reassigned_at_once() -> None:
    h = Harness()
    h.node("conn-a", node_register("a"))
    sid = h.open_session("c1")
    h.utter("c1", sid, 0)
    h.take("conn-a", "job_assign")
    h.node("conn-b", node_register("b"))
    h._apply(h.core.node_disconnected("conn-a", h.now))
    job = h.take("conn-b", "job_assign")[0]
    h.result("conn-b", job)
    assert [m.utterance_index for m in h.to("c1", "translation_result")] == [0]


def test_retryable_failure_moves_the_job_and_non_retryable_ends_it() -> None:
    h = Harness(sticky_nodes=False)
    h.node("conn-a", node_register("a"))
    h.node("conn-b", node_register("b"))
    sid = h.open_session("c1")
    h.utter("c1", sid, 0)
    conn = "conn-a" if h.to("conn-a", "job_assign") else "conn-b"
    other = "conn-b" if conn == "conn-a" else "conn-a"
    job = h.take(conn, "job_assign")[0]
    h.result(conn, job, success=False, error={"code": "INFERENCE_BACKEND_ERROR", "message": "x"})
    retry = h.take(other, "job_assign")[0]
    h.result(other, retry, success=False, error={"code": "AUDIO_DECODE_FAILED", "message": "bad"})
    err = h.take("c1", "error")[0]
    assert err.code == "AUDIO_DECODE_FAILED"
    assert err.utterance_index == 0


def test_after_max_attempts_the_client_gets_an_error() -> None:
    h = Harness(max_attempts=3, ack_timeout_s=1.0)
    for n in ("a", "b", "c", "d"):
        h.node(f"conn-{n}", node_register(n))
    sid = h.open_session("c1")
    h.utter("c1", sid, 0)
    for _ in range(3):
        h.advance(1.1)
    errors = h.to("c1", "error")
    assert len(errors) == 1
    assert errors[0].code == "JOB_TIMEOUT"
    assigned = sum(len(h.to(f"conn-{n}", "job_assign")) for n in "abcd")
    assert assigned == 3


def test_late_result_of_an_old_attempt_is_dropped() -> None:
    h = Harness(ack_timeout_s=1.0)
    h.node("conn-a", node_register("a"))
    sid = h.open_session("c1")
    h.utter("c1", sid, 0)
    old = h.take("conn-a", "job_assign")[0]
    h.node("conn-b", node_register("b"))
    h.advance(1.1)
    new = h.take("conn-b", "job_assign")[0]
    h.result("conn-a", old)  # the late answer from the first attempt
    assert h.to("c1", "translation_result") == []
    h.result("conn-b", new)
    h.result("conn-b", new)  # a duplicate
    assert len(h.to("c1", "translation_result")) == 1


def test_results_returned_out_of_order_are_delivered_in_order() -> None:
    h = Harness()
    h.node("conn-a", node_register("a", max_concurrent_jobs=8))
    sid = h.open_session("c1")
    for i in range(4):
        h.utter("c1", sid, i)
    jobs: list[JobAssign] = h.take("conn-a", "job_assign")  # type: ignore[assignment]
    for j in reversed(jobs):
        h.result("conn-a", j)
    assert [m.utterance_index for m in h.to("c1", "translation_result")] == [0, 1, 2, 3]


def test_a_gap_becomes_missing_result_after_the_gap_timeout() -> None:
    h = Harness(result_gap_timeout_s=5.0)
    h.node("conn-a", node_register("a"))
    sid = h.open_session("c1")
    h.utter("c1", sid, 0)
    h.utter("c1", sid, 2)  # index 1 never arrives
    j0, j2 = h.take("conn-a", "job_assign")
    h.result("conn-a", j0)
    h.result("conn-a", j2)
    assert [m.utterance_index for m in h.take("c1", "translation_result")] == [0]
    h.advance(4.9)
    assert h.to("c1") == []
    h.advance(0.2)
    kinds = [(m.type, m.utterance_index) for m in h.to("c1")]
    assert kinds == [("missing_result", 1), ("translation_result", 2)]


def test_a_long_utterance_in_progress_is_not_a_gap() -> None:
    h = Harness(result_gap_timeout_s=5.0, job_timeout_s=120.0)
    h.node("conn-a", node_register("a"))
    sid = h.open_session("c1")
    h.utter("c1", sid, 0)
    h.utter("c1", sid, 1)
    j0, j1 = h.take("conn-a", "job_assign")
    h.node("conn-a", {"type": "job_ack", "job_id": j0.job_id})
    h.node("conn-a", {"type": "job_ack", "job_id": j1.job_id})
    h.result("conn-a", j1)
    for _ in range(8):  # 40 s: far past the gap timeout, within the job timeout
        h.advance(5.0)
        h.node("conn-a", {"type": "node_heartbeat", "node_id": "a", "timestamp": 1})
    assert h.to("c1") == []
    h.result("conn-a", j0)
    assert [m.utterance_index for m in h.to("c1", "translation_result")] == [0, 1]


def test_node_goes_offline_after_three_missed_heartbeats() -> None:
    h = Harness(heartbeat_interval_s=15.0)
    h.node("conn-a", node_register("a"))
    h.advance(44.0)
    assert h.core.registry.nodes["a"].status == "ready"
    h.advance(2.0)
    assert h.core.registry.nodes["a"].status == "offline"
    assert ("conn-a", 1001) in h.closed


def test_queued_job_waits_for_a_free_node_then_runs() -> None:
    h = Harness(queue_timeout_s=10.0)
    h.node("conn-a", node_register("a", max_concurrent_jobs=1))
    sid = h.open_session("c1")
    h.utter("c1", sid, 0)
    h.utter("c1", sid, 1)
    first = h.take("conn-a", "job_assign")
    assert len(first) == 1
    h.result("conn-a", first[0])
    second = h.take("conn-a", "job_assign")
    assert len(second) == 1
    assert second[0].utterance_index == 1


def test_queued_job_fails_with_node_overloaded_after_queue_timeout() -> None:
    h = Harness(queue_timeout_s=10.0)
    h.node("conn-a", node_register("a", max_concurrent_jobs=1))
    sid = h.open_session("c1")
    h.utter("c1", sid, 0)
    first = h.take("conn-a", "job_assign")[0]
    h.node("conn-a", {"type": "job_ack", "job_id": first.job_id})
    h.utter("c1", sid, 1)
    h.advance(10.1)
    h.result("conn-a", first)  # index 1's error waits for index 0, in order
    err = h.to("c1", "error")
    assert len(err) == 1
    assert err[0].code == "NODE_OVERLOADED"
    assert err[0].utterance_index == 1


def test_which_nodes_can_serve_follows_the_registry_as_it_changes() -> None:
    # Eligibility by languages is worked out once per kind of job and kept: it must be redone
    # when a node joins, changes its capabilities, or leaves.
    h = Harness(utterance_burst=100, sticky_nodes=False)
    h.node("conn-a", node_register("a"))
    sid = h.open_session("c1")
    h.utter("c1", sid, 0)
    (job0,) = h.take("conn-a", "job_assign")
    h.node("conn-b", node_register("b"))  # joins: idle, so it takes the next job
    h.utter("c1", sid, 1)
    (job1,) = h.take("conn-b", "job_assign")
    h.result("conn-a", job0)
    h.result("conn-b", job1)
    update = {
        "type": "node_heartbeat",
        "node_id": "b",
        "timestamp": 2,
        "language_capabilities": {"supported_language_pairs": [{"src": "zh", "tgt": "en"}]},
    }
    h.node("conn-b", update)  # b no longer translates en->zh: only a can take en->zh now
    for i in (2, 3, 4):
        h.utter("c1", sid, i)
    jobs = h.take("conn-a", "job_assign")
    assert len(jobs) == 3
    assert not h.take("conn-b", "job_assign")
    for job in jobs:
        h.result("conn-a", job)
    assert [m.utterance_index for m in h.take("c1", "translation_result")] == [0, 1, 2, 3, 4]
    h.core.node_disconnected("conn-a", h.now)  # and once a is gone, nobody can
    h.utter("c1", sid, 5)
    (err,) = h.take("c1", "error")
    assert err.code == "NO_AVAILABLE_NODE"
    assert err.utterance_index == 5


def test_a_node_with_an_unsupported_protocol_version_is_refused_and_closed() -> None:
    h = Harness()
    h.node("conn-a", node_register("a", protocol_version="7.0"))
    error = h.to("conn-a", "error")[0]
    assert (error.code, error.details) == (  # type: ignore[attr-defined]
        "UNSUPPORTED_PROTOCOL_VERSION",
        {"field": "protocol_version"},
    )
    assert h.closed == [("conn-a", 1008)]
    assert "a" not in h.core.registry.nodes


def test_a_feature_no_node_has_is_served_not_refused() -> None:
    # protocol v0.1 §2.3: an absent optional module leaves its field null; it is no reason to
    # refuse the utterance with NO_AVAILABLE_NODE.
    h = Harness()
    h.node("conn-a", node_register("a", features_supported={"speech_rate_detection": True}))
    sid = h.open_session("c1", features={"emotion_detection": True})
    h.utter("c1", sid, 0)
    h.utter("c1", sid, 1, features={"voice_style_detection": True, "emotion_detection": True})
    assert len(h.to("conn-a", "job_assign")) == 2
    assert h.to("c1", "error") == []


def test_nodes_with_the_requested_feature_are_preferred_until_full() -> None:
    h = Harness(sticky_nodes=False)
    h.node("conn-plain", node_register("plain"))
    h.node(
        "conn-emo",
        node_register("emo", max_concurrent_jobs=2, features_supported={"emotion_detection": True}),
    )
    sid = h.open_session("c1", features={"emotion_detection": True})
    for i in range(3):
        h.utter("c1", sid, i)
    assert [j.utterance_index for j in h.to("conn-emo", "job_assign")] == [0, 1]
    assert [j.utterance_index for j in h.to("conn-plain", "job_assign")] == [2]


def test_sticky_node_without_the_feature_gives_way_to_one_with_it() -> None:
    h = Harness()
    h.node("conn-plain", node_register("plain"))
    sid = h.open_session("c1")
    h.utter("c1", sid, 0)
    h.result("conn-plain", h.take("conn-plain", "job_assign")[0])
    h.node("conn-emo", node_register("emo", features_supported={"emotion_detection": True}))
    h.utter("c1", sid, 1, features={"emotion_detection": True})
    h.utter("c1", sid, 2)
    assert [j.utterance_index for j in h.to("conn-emo", "job_assign")] == [1]
    assert [j.utterance_index for j in h.to("conn-plain", "job_assign")] == [2]
