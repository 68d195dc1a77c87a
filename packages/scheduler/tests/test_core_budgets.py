"""Core rules for the byte budgets, the index window, queue progress and the deadline heap,
driven through the pure core with a fake clock."""

from __future__ import annotations

import base64

from lingua_scheduler._core.jobs import InvalidTransition, Job, JobState
from lingua_scheduler.testing import Harness, node_register

TTS = base64.b64encode(b"\x00\x01" * 50_000).decode()  # 100 KB of speech


def _session(h: Harness, conn: str = "c1", **kw: object) -> str:
    h.node("conn-a", node_register("a", max_concurrent_jobs=1))
    return h.open_session(conn, **kw)


def test_a_gap_inside_the_window_ends_in_one_missing_result_per_index() -> None:
    h = Harness(utterance_index_window=8, result_gap_timeout_s=5.0)
    sid = _session(h)
    h.utter("c1", sid, 0)
    h.result("conn-a", h.take("conn-a", "job_assign")[0])
    h.utter("c1", sid, 7)  # 1..6 never sent; 7 is the farthest the window allows
    h.result("conn-a", h.take("conn-a", "job_assign")[0])
    h.utter("c1", sid, 16)  # 15 ahead of the head (1): refused, not accepted
    assert [(m.type, m.code) for m in h.take("c1", "error")] == [("error", "INVALID_MESSAGE")]
    h.advance(5.0)
    got = [(m.type, m.utterance_index) for m in h.take("c1")]
    assert got == [("translation_result", 0)] + [("missing_result", i) for i in range(1, 7)] + [
        ("translation_result", 7)
    ]


def test_the_tick_only_wakes_for_what_is_due() -> None:
    h = Harness(result_gap_timeout_s=5.0, ack_timeout_s=5.0)
    sid = _session(h)
    h.utter("c1", sid, 0)
    h.advance(1.0)
    due = h.core.next_deadline()
    assert due is not None
    assert due <= h.now + 4.0
    assert h.advance(0.5) == []  # nothing due yet: nothing done


def test_a_queued_job_waits_while_a_capable_node_keeps_finishing_jobs() -> None:
    h = Harness(queue_timeout_s=10.0, ack_timeout_s=100.0, job_timeout_s=100.0)
    sid = _session(h)
    for i in range(3):
        h.utter("c1", sid, i)
    for _ in range(2):
        h.advance(8.0)  # each job takes 8 s: the last one waits 16 s in all
        h.result("conn-a", h.take("conn-a", "job_assign")[0])
    h.advance(8.0)
    h.result("conn-a", h.take("conn-a", "job_assign")[0])
    assert [m.utterance_index for m in h.to("c1", "translation_result")] == [0, 1, 2]
    assert h.to("c1", "error") == []


def test_a_queued_job_fails_when_no_capable_node_makes_progress() -> None:
    h = Harness(queue_timeout_s=10.0, ack_timeout_s=100.0, job_timeout_s=100.0)
    sid = _session(h)
    h.utter("c1", sid, 0)
    h.utter("c1", sid, 1)  # waits behind 0 on a node that finishes nothing
    h.advance(10.0)
    assert [j.utterance_index for j in h.core.jobs.values()] == [0]  # 1 has ended
    h.result("conn-a", h.take("conn-a", "job_assign")[0])
    got = [(m.type, m.utterance_index) for m in h.to("c1") if m.type != "session_init_ack"]
    assert got == [("translation_result", 0), ("error", 1)]
    assert h.to("c1", "error")[0].code == "NODE_OVERLOADED"


def test_a_full_queue_is_node_overloaded_for_that_index_not_no_available_node() -> None:
    h = Harness(max_queue_bytes=40_000)  # one second of pcm16 is 32,000 bytes
    sid = _session(h)
    h.utter("c1", sid, 0)  # runs
    h.utter("c1", sid, 1)  # waits
    h.utter("c1", sid, 2)  # would pass the queue's byte budget
    errors = h.to("c1", "error")
    assert [(m.utterance_index, m.code) for m in errors] == []  # held behind 0 and 1
    h.result("conn-a", h.take("conn-a", "job_assign")[0])
    h.result("conn-a", h.take("conn-a", "job_assign")[0])
    got = [(m.type, m.utterance_index) for m in h.to("c1") if m.type != "session_init_ack"]
    assert got == [("translation_result", 0), ("translation_result", 1), ("error", 2)]
    assert h.to("c1", "error")[0].code == "NODE_OVERLOADED"
    assert "queue is full" in h.to("c1", "error")[0].message


def test_the_replay_buffer_keeps_text_and_drops_speech_beyond_its_bytes() -> None:
    h = Harness(replay_buffer_bytes=50_000)
    sid = _session(h)
    h.utter("c1", sid, 0)
    h.result("conn-a", h.take("conn-a", "job_assign")[0], tts_audio=TTS, tts_format="pcm16")
    first = h.take("c1", "translation_result")[0]
    assert len(first.tts_audio) == 100_000
    assert first.tts_audio_omitted is None
    h.utter("c1", sid, 0)  # resent: replayed from the buffer, which kept only the text
    again = h.take("c1", "translation_result")[0]
    assert again.text_translated == first.text_translated
    assert again.tts_audio is None
    assert again.tts_audio_omitted == "replay_budget"
    assert h.core.sessions[sid].sequencer.delivered_bytes <= 50_000


def test_results_held_for_a_disconnected_client_stay_within_the_hold_budget() -> None:
    h = Harness(session_hold_bytes=150_000)
    h.node("conn-a", node_register("a"))
    sid = h.open_session("c1")
    token = h.core.sessions[sid].resume_token
    for i in range(2):
        h.utter("c1", sid, i)
    h._apply(h.core.client_disconnected("c1", h.now))
    for job in h.take("conn-a", "job_assign"):
        h.result("conn-a", job, tts_audio=TTS, tts_format="pcm16")
    assert h.core.sessions[sid].outbox_bytes <= 150_000
    h.client(
        "c2", {"type": "session_init", "src_lang": "en", "tgt_lang": "zh", "resume_token": token}
    )
    results = h.to("c2", "translation_result")
    assert [(m.utterance_index, m.tts_audio_omitted) for m in results] == [
        (0, None),
        (1, "hold_budget"),
    ]
    assert results[1].text_translated  # the text is never dropped


def test_a_job_moves_only_along_the_transition_table() -> None:
    h = Harness()
    sid = _session(h)
    h.utter("c1", sid, 0)
    job: Job = next(iter(h.core.jobs.values()))
    assert job.state is JobState.ASSIGNED
    try:
        job.move(JobState.NEW)
    except InvalidTransition:
        pass
    else:
        raise AssertionError("ASSIGNED -> NEW must be refused")
    assert job.state is JobState.ASSIGNED
