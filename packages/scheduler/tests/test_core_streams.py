"""Streamed utterances in the core, without sockets: negotiation, chunk buffering and checks,
partials (revisions, bypassing the sequencer, never after the final result), failover with all
audio so far, the buffered fallback, and timeouts counted from the final chunk."""

from __future__ import annotations

from typing import Any

import pytest
from lingua_protocol import AsrPartial, JobAssign, JobAudio, Message
from lingua_scheduler.testing import Harness, node_register, streaming_node_register

CHUNK = b"\x01\x00" * 1600  # 0.1 s at 16 kHz


def _stream_session(h: Harness, conn: str = "c1", **kw: Any) -> str:
    return h.open_session(conn, enable_streaming_asr=True, **kw)


def _assign(h: Harness, conn: str) -> JobAssign:
    jobs = h.take(conn, "job_assign")
    assert len(jobs) == 1, jobs
    job = jobs[0]
    assert isinstance(job, JobAssign)
    return job


def _finals(h: Harness, conn: str) -> list[Message]:
    return [m for c, m in h.sent if c == conn and m.type in ("translation_result", "error")]


# ---------------------------------------------------------------------- negotiation


def test_session_that_does_not_ask_sees_nothing_new_and_chunks_stay_unsupported() -> None:
    h = Harness()
    h.client("c1", {"type": "session_init", "src_lang": "en", "tgt_lang": "zh"})
    ack = h.take("c1", "session_init_ack")[0]
    wire = ack.to_dict()
    assert "streaming" not in wire
    assert "partial_update_interval_ms" not in wire
    assert "max_stream_ms" not in wire
    h.chunk("c1", ack.session_id, 0, 0)  # type: ignore[attr-defined]
    [error] = h.take("c1", "error")
    assert error.code == "UNSUPPORTED_FEATURE"  # type: ignore[attr-defined]
    assert error.utterance_index == 0  # type: ignore[attr-defined]


def test_streaming_is_granted_with_the_interval_clamped_to_its_bounds() -> None:
    h = Harness()
    for conn, asked, granted in (("a", None, 1000), ("b", 50, 200), ("c", 99_999, 5000)):
        extra = {} if asked is None else {"partial_update_interval_ms": asked}
        h.client(
            conn,
            {
                "type": "session_init",
                "src_lang": "en",
                "tgt_lang": "zh",
                "enable_streaming_asr": True,
                **extra,
            },
        )
        ack = h.take(conn, "session_init_ack")[0]
        assert ack.streaming is True  # type: ignore[attr-defined]
        assert ack.partial_update_interval_ms == granted  # type: ignore[attr-defined]
        assert ack.max_stream_ms == 30_000  # type: ignore[attr-defined]


def test_streaming_off_answers_false_and_keeps_chunks_unsupported() -> None:
    h = Harness(streaming_enabled=False)
    h.client(
        "c1",
        {"type": "session_init", "src_lang": "en", "tgt_lang": "zh", "enable_streaming_asr": True},
    )
    ack = h.take("c1", "session_init_ack")[0]
    assert ack.streaming is False  # type: ignore[attr-defined]
    h.chunk("c1", ack.session_id, 0, 0)  # type: ignore[attr-defined]
    assert h.take("c1", "error")[0].code == "UNSUPPORTED_FEATURE"  # type: ignore[attr-defined]


# ---------------------------------------------------------------------- chunks to a node


def test_first_chunk_picks_a_streaming_node_and_later_chunks_follow_as_job_audio() -> None:
    h = Harness()
    h.node("n-plain", node_register("plain"))
    h.node("n-stream", streaming_node_register("streamer"))
    sid = _stream_session(h, partial_update_interval_ms=300)
    h.chunk("c1", sid, 0, 0, CHUNK)
    assert not h.to("n-plain", "job_assign")
    job = _assign(h, "n-stream")
    assert job.stream
    assert not job.stream_closed
    assert job.audio.to_bytes() == CHUNK
    assert job.next_seq == 1
    assert job.partial_update_interval_ms == 300
    h.chunk("c1", sid, 0, 1, CHUNK)
    h.chunk("c1", sid, 0, 2, b"", is_final=True)
    audio = h.take("n-stream", "job_audio")
    got = [(a.seq, a.is_final) for a in audio if isinstance(a, JobAudio)]
    assert got == [(1, False), (2, True)]
    assert all(a.job_id == job.job_id for a in audio if isinstance(a, JobAudio))
    h.result("n-stream", job)
    [final] = _finals(h, "c1")
    assert final.type == "translation_result"
    assert final.utterance_index == 0
    assert h.core.sessions[sid].streams == {}  # the audio is let go with the final result


def test_a_resent_chunk_is_deduplicated() -> None:
    h = Harness()
    h.node("n1", streaming_node_register("n1"))
    sid = _stream_session(h)
    h.chunk("c1", sid, 0, 0, CHUNK)
    h.chunk("c1", sid, 0, 1, CHUNK)
    h.take("n1")
    h.chunk("c1", sid, 0, 1, CHUNK)
    h.chunk("c1", sid, 0, 0, CHUNK)
    assert h.take("n1") == []
    assert h.to("c1") == []
    assert len(h.core.sessions[sid].streams[0].audio) == 2 * len(CHUNK)


# ---------------------------------------------------------------------- checks


def test_a_seq_gap_ends_the_utterance_with_one_error_and_cancels_the_node() -> None:
    h = Harness()
    h.node("n1", streaming_node_register("n1"))
    sid = _stream_session(h)
    h.chunk("c1", sid, 0, 0, CHUNK)
    job = _assign(h, "n1")
    h.chunk("c1", sid, 0, 2, CHUNK)
    [error] = _finals(h, "c1")
    assert error.code == "INVALID_MESSAGE"
    assert error.utterance_index == 0
    assert [c.job_id for c in h.to("n1", "job_cancel")] == [job.job_id]  # type: ignore[attr-defined]
    h.chunk("c1", sid, 0, 3, CHUNK, is_final=True)  # a late chunk of an ended utterance
    assert len(_finals(h, "c1")) == 1
    assert not h.core.sessions[sid].streams


def test_a_sample_rate_change_ends_the_utterance() -> None:
    h = Harness()
    h.node("n1", streaming_node_register("n1"))
    sid = _stream_session(h)
    h.chunk("c1", sid, 0, 0, CHUNK)
    h.chunk("c1", sid, 0, 1, CHUNK, sample_rate=8000)
    [error] = _finals(h, "c1")
    assert error.code == "INVALID_MESSAGE"
    assert "8000 Hz" in error.message


def test_a_refused_first_chunk_accepts_nothing() -> None:
    h = Harness()
    h.node("n1", streaming_node_register("n1"))
    sid = _stream_session(h)
    h.chunk("c1", sid, 0, 0, CHUNK, audio_format="opus")
    h.chunk("c1", sid, 0, 0, b"\x00\x00\x00")  # odd length is no pcm16
    h.chunk("c1", sid, 0, 1, CHUNK)  # an utterance opens with seq 0
    codes = [e.code for e in h.take("c1", "error")]  # type: ignore[attr-defined]
    assert codes == ["UNSUPPORTED_FEATURE", "AUDIO_DECODE_FAILED", "INVALID_MESSAGE"]
    assert h.core.sessions[sid].sequencer.pending() == 0
    assert not h.to("n1", "job_assign")
    h.chunk("c1", sid, 0, 0, CHUNK)  # the index is still free
    _assign(h, "n1")


def test_audio_past_max_stream_ms_ends_the_utterance_with_message_too_large() -> None:
    h = Harness(max_stream_ms=250)
    h.node("n1", streaming_node_register("n1"))
    sid = _stream_session(h)
    h.chunk("c1", sid, 0, 0, CHUNK)
    h.chunk("c1", sid, 0, 1, CHUNK)
    assert not _finals(h, "c1")
    h.chunk("c1", sid, 0, 2, CHUNK)  # 0.3 s > 0.25 s
    [error] = _finals(h, "c1")
    assert error.code == "MESSAGE_TOO_LARGE"
    assert error.utterance_index == 0


def test_more_chunks_than_max_stream_chunks_end_the_utterance() -> None:
    h = Harness(max_stream_chunks=3)
    h.node("n1", streaming_node_register("n1"))
    sid = _stream_session(h)
    for seq in range(3):
        h.chunk("c1", sid, 0, seq, b"\x00\x00")
    assert not _finals(h, "c1")
    h.chunk("c1", sid, 0, 3, b"", is_final=True)
    [error] = _finals(h, "c1")
    assert error.code == "MESSAGE_TOO_LARGE"  # type: ignore[attr-defined]
    assert error.utterance_index == 0  # type: ignore[attr-defined]


def test_an_open_stream_counts_in_the_window_and_its_bytes_grow_with_each_chunk() -> None:
    h = Harness(max_in_flight_utterances=1, max_in_flight_bytes=3 * len(CHUNK))
    h.node("n1", streaming_node_register("n1"))
    sid = _stream_session(h)
    h.chunk("c1", sid, 0, 0, CHUNK)
    seq = h.core.sessions[sid].sequencer
    assert (seq.pending(), seq.in_flight_bytes) == (1, len(CHUNK))
    h.utter("c1", sid, 1)
    assert h.take("c1", "error")[0].code == "RATE_LIMITED"  # type: ignore[attr-defined]
    h.chunk("c1", sid, 0, 1, CHUNK)
    h.chunk("c1", sid, 0, 2, CHUNK)
    assert seq.in_flight_bytes == 3 * len(CHUNK)
    h.chunk("c1", sid, 0, 3, CHUNK)  # over the byte window: the utterance ends, not silently
    [error] = _finals(h, "c1")
    assert error.code == "RATE_LIMITED"
    assert error.utterance_index == 0
    assert (seq.pending(), seq.in_flight_bytes) == (0, 0)


# ---------------------------------------------------------------------- partials


def test_partials_bypass_the_sequencer_and_carry_scheduler_revisions() -> None:
    h = Harness()
    h.node("n1", streaming_node_register("n1"))
    sid = _stream_session(h)
    h.utter("c1", sid, 0)  # a whole utterance, unanswered: results wait behind it
    h.take("n1", "job_assign")
    h.chunk("c1", sid, 1, 0, CHUNK)
    job = _assign(h, "n1")
    h.partial("n1", job, "hello wor", "hello", revision=40)
    h.partial("n1", job, "hello world", "hello world", revision=3)
    partials = h.take("c1", "asr_partial")
    assert [(p.revision, p.text, p.stable_text) for p in partials if isinstance(p, AsrPartial)] == [
        (1, "hello wor", "hello"),
        (2, "hello world", "hello world"),
    ]
    assert all(p.utterance_index == 1 and p.session_id == sid for p in partials)  # type: ignore[attr-defined]


def test_partials_from_a_stale_attempt_or_another_node_are_dropped() -> None:
    h = Harness()
    h.node("n1", streaming_node_register("n1"))
    h.node("n2", streaming_node_register("n2"))
    sid = _stream_session(h)
    h.chunk("c1", sid, 0, 0, CHUNK)
    job = (h.take("n1", "job_assign") + h.take("n2", "job_assign"))[0]
    assert isinstance(job, JobAssign)
    holder = "n1" if h.core.jobs[job.job_id].node_id == "n1" else "n2"
    other = "n2" if holder == "n1" else "n1"
    h.partial(other, job, "not yours")
    h.partial(holder, job, "old attempt", attempt_id=f"{job.job_id}.0")
    assert h.take("c1", "asr_partial") == []
    h.partial(holder, job, "yours")
    assert [p.text for p in h.take("c1", "asr_partial")] == ["yours"]  # type: ignore[attr-defined]


def test_no_partial_reaches_the_client_after_its_final_result() -> None:
    h = Harness()
    h.node("n1", streaming_node_register("n1"))
    sid = _stream_session(h)
    h.chunk("c1", sid, 0, 0, CHUNK, is_final=True)
    job = _assign(h, "n1")
    assert job.stream_closed
    h.result("n1", job)
    h.partial("n1", job, "too late")
    assert [m.type for c, m in h.sent if c == "c1"] == ["translation_result"]


def test_partial_is_a_coalescible_send_keyed_by_utterance() -> None:
    from lingua_scheduler._core.actions import SendLatest

    h = Harness()
    h.node("n1", streaming_node_register("n1"))
    sid = _stream_session(h)
    h.chunk("c1", sid, 3, 0, CHUNK)
    job = _assign(h, "n1")
    actions = h.partial("n1", job, "x")
    assert [(type(a), a.key) for a in actions if isinstance(a, SendLatest)] == [
        (SendLatest, (sid, 3))
    ]


def test_room_listeners_get_the_speakers_partials_with_room_fields() -> None:
    h = Harness()
    h.node("n1", streaming_node_register("n1"))
    speaker = _stream_session(h, "c1")
    h.client("c1", {"type": "room_create", "display_name": "Ann", "preferred_lang": "zh"})
    code = h.take("c1", "room_create_ack")[0].room_code  # type: ignore[attr-defined]
    same = h.open_session("c2", src="zh", tgt="zh")
    h.client("c2", {"type": "room_join", "room_code": code, "preferred_lang": "zh"})
    h.open_session("c3", src="en", tgt="en")
    h.client("c3", {"type": "room_join", "room_code": code, "preferred_lang": "en"})
    h.chunk("c1", speaker, 0, 0, CHUNK)
    job = _assign(h, "n1")
    assert job.tgt_lang == "zh"
    h.partial("n1", job, "hello", "hello", text_translated="你好")
    [own] = h.take("c1", "asr_partial")
    assert own.room_code is None  # type: ignore[attr-defined]
    [zh] = h.take("c2", "asr_partial")
    assert (zh.session_id, zh.room_code, zh.speaker_session_id) == (same, code, speaker)  # type: ignore[attr-defined]
    assert zh.speaker_display_name == "Ann"
    assert zh.text_translated == "你好"
    [en] = h.take("c3", "asr_partial")
    assert en.text == "hello"
    assert en.text_translated is None
    # The other language is a whole job created at the final chunk.
    h.chunk("c1", speaker, 0, 1, CHUNK, is_final=True)
    [en_job] = [j for j in h.take("n1", "job_assign") if isinstance(j, JobAssign)]
    assert en_job.tgt_lang == "en"
    assert not en_job.stream
    assert en_job.audio.to_bytes() == CHUNK * 2
    # Its result may come first: after the final chunk, only listeners whose final copy
    # comes from the streaming job still get its partials.
    h.take("c3")
    h.take("c2")
    h.result("n1", en_job)
    assert [m.type for m in h.take("c3")] == ["translation_result"]
    h.partial("n1", job, "hello there")
    assert h.take("c3") == []
    assert [m.type for m in h.take("c2")] == ["asr_partial"]


# ---------------------------------------------------------------------- failover, fallback


def test_a_node_that_dies_mid_utterance_is_replaced_with_all_audio_so_far() -> None:
    h = Harness()
    h.node("n1", streaming_node_register("n1"))
    sid = _stream_session(h)
    h.chunk("c1", sid, 0, 0, CHUNK)
    first = _assign(h, "n1")
    h.node("n1", {"type": "job_ack", "job_id": first.job_id, "attempt_id": first.attempt_id})
    h.partial("n1", first, "one")
    h.chunk("c1", sid, 0, 1, b"\x02\x00" * 800)
    h.node("n2", streaming_node_register("n2"))
    h._apply(h.core.node_disconnected("n1", h.now))
    second = _assign(h, "n2")
    assert second.job_id == first.job_id
    assert second.attempt_id != first.attempt_id
    assert second.stream
    assert not second.stream_closed
    assert second.audio.to_bytes() == CHUNK + b"\x02\x00" * 800
    assert second.next_seq == 2
    h.partial("n1", first, "from the dead node")  # its connection is gone: not relayed
    h.partial("n2", second, "one two")
    h.chunk("c1", sid, 0, 2, b"", is_final=True)
    [audio] = h.take("n2", "job_audio")
    assert audio.seq == 2
    assert audio.is_final
    h.result("n2", second)
    partials = h.take("c1", "asr_partial")
    assert [p.revision for p in partials] == [1, 2]  # type: ignore[attr-defined]
    assert len(_finals(h, "c1")) == 1


def test_failover_after_the_final_chunk_sends_the_closed_stream() -> None:
    h = Harness()
    h.node("n1", streaming_node_register("n1"))
    h.node("n2", streaming_node_register("n2"))
    sid = _stream_session(h)
    h.chunk("c1", sid, 0, 0, CHUNK)
    job = (h.take("n1", "job_assign") + h.take("n2", "job_assign"))[0]
    holder = h.core.jobs[job.job_id].node_id
    other = "n2" if holder == "n1" else "n1"
    h.chunk("c1", sid, 0, 1, CHUNK, is_final=True)
    h._apply(h.core.node_disconnected(holder or "", h.now))
    again = _assign(h, other)
    assert again.stream
    assert again.stream_closed
    assert again.next_seq == 2
    assert again.audio.to_bytes() == CHUNK * 2
    h.result(other, again)
    assert len(_finals(h, "c1")) == 1


def test_without_a_streaming_node_the_utterance_runs_whole_at_its_final_chunk() -> None:
    h = Harness()
    h.node("n1", node_register("n1"))
    sid = _stream_session(h)
    h.chunk("c1", sid, 0, 0, CHUNK)
    h.chunk("c1", sid, 0, 1, CHUNK)
    assert h.to("n1", "job_assign") == []
    h.chunk("c1", sid, 0, 2, CHUNK, is_final=True)
    job = _assign(h, "n1")
    assert not job.stream
    assert job.audio.to_bytes() == CHUNK * 3
    h.result("n1", job)
    assert len(_finals(h, "c1")) == 1


def test_no_node_at_all_refuses_the_first_chunk() -> None:
    h = Harness()
    sid = _stream_session(h)
    h.chunk("c1", sid, 0, 0, CHUNK)
    [error] = h.take("c1", "error")
    assert error.code == "NO_AVAILABLE_NODE"  # type: ignore[attr-defined]
    assert h.core.sessions[sid].sequencer.pending() == 0


def test_streams_use_their_own_slots_and_a_full_node_buffers_the_next_stream() -> None:
    h = Harness()
    h.node("n1", streaming_node_register("n1", streams=1, max_concurrent_jobs=1))
    sid = _stream_session(h)
    h.chunk("c1", sid, 0, 0, CHUNK)
    _assign(h, "n1")
    h.utter("c1", sid, 1)  # a whole utterance still gets the job slot
    assert not _assign(h, "n1").stream
    h.chunk("c1", sid, 2, 0, CHUNK)  # no stream slot left: buffered
    assert h.to("n1", "job_assign") == []
    h.chunk("c1", sid, 2, 1, CHUNK, is_final=True)
    assert h.to("n1", "job_assign") == []  # whole now, and queued behind the busy job slot
    assert len(h.core.queue) == 1


def test_a_stream_whose_node_dies_with_no_streaming_node_left_finishes_buffered() -> None:
    h = Harness()
    h.node("n1", streaming_node_register("n1"))
    h.node("n2", node_register("n2"))
    sid = _stream_session(h)
    h.chunk("c1", sid, 0, 0, CHUNK)
    _assign(h, "n1")
    h._apply(h.core.node_disconnected("n1", h.now))
    h.chunk("c1", sid, 0, 1, CHUNK, is_final=True)
    job = _assign(h, "n2")
    assert not job.stream
    assert job.audio.to_bytes() == CHUNK * 2
    h.result("n2", job)
    assert len(_finals(h, "c1")) == 1


# ---------------------------------------------------------------------- timeouts


def test_a_streams_run_timeout_counts_from_its_final_chunk() -> None:
    h = Harness(job_timeout_s=5.0, job_timeout_per_audio_s=0.0, max_stream_ms=60_000)
    h.node("n1", streaming_node_register("n1"))
    sid = _stream_session(h)
    h.chunk("c1", sid, 0, 0, CHUNK)
    job = _assign(h, "n1")
    h.node("n1", {"type": "job_ack", "job_id": job.job_id, "attempt_id": job.attempt_id})
    for seq in range(1, 5):  # the speaker talks for 20 s, longer than the job timeout
        h.advance(5.0)
        h.chunk("c1", sid, 0, seq, CHUNK)
    assert h.to("n1", "job_cancel") == []
    h.chunk("c1", sid, 0, 5, CHUNK, is_final=True)
    h.advance(4.9)
    assert h.to("n1", "job_cancel") == []
    h.advance(0.2)
    assert [c.reason for c in h.to("n1", "job_cancel")] == ["job timeout"]  # type: ignore[attr-defined]


def test_an_open_stream_without_a_final_chunk_ends_with_job_timeout() -> None:
    h = Harness(max_stream_ms=1000, stream_close_grace_s=2.0)
    h.node("n1", streaming_node_register("n1"))
    sid = _stream_session(h)
    h.chunk("c1", sid, 0, 0, CHUNK)
    job = _assign(h, "n1")
    h.advance(2.9)
    assert not _finals(h, "c1")
    h.advance(0.2)
    [error] = _finals(h, "c1")
    assert error.code == "JOB_TIMEOUT"
    assert error.utterance_index == 0
    assert [c.job_id for c in h.to("n1", "job_cancel")] == [job.job_id]  # type: ignore[attr-defined]
    assert h.core.registry.nodes["n1"].stream_jobs == set()


# ---------------------------------------------------------------------- sessions, acks


def test_a_client_that_resumes_mid_stream_resends_and_goes_on() -> None:
    h = Harness()
    h.node("n1", streaming_node_register("n1"))
    h.client(
        "c1",
        {"type": "session_init", "src_lang": "en", "tgt_lang": "zh", "enable_streaming_asr": True},
    )
    ack = h.take("c1", "session_init_ack")[0]
    sid, token = ack.session_id, ack.resume_token  # type: ignore[attr-defined]
    h.chunk("c1", sid, 0, 0, CHUNK)
    h.chunk("c1", sid, 0, 1, CHUNK)
    job = _assign(h, "n1")
    h._apply(h.core.client_disconnected("c1", h.now))
    h.partial("n1", job, "while away")
    assert h.core.sessions[sid].outbox == []  # partials are not held for a resume
    h.client(
        "c2", {"type": "session_init", "src_lang": "en", "tgt_lang": "zh", "resume_token": token}
    )
    resumed = h.take("c2", "session_init_ack")[0]
    assert resumed.streaming is True  # type: ignore[attr-defined]
    h.take("n1")
    for seq in (0, 1):  # a client that does not know what arrived resends from the start
        h.chunk("c2", sid, 0, seq, CHUNK)
    assert h.take("n1") == []
    h.chunk("c2", sid, 0, 2, CHUNK, is_final=True)
    assert [a.seq for a in h.take("n1", "job_audio")] == [2]  # type: ignore[attr-defined]
    h.result("n1", job)
    assert [m.type for m in _finals(h, "c2")] == ["translation_result"]


def test_a_session_that_ends_mid_stream_cancels_its_node_and_frees_the_slot() -> None:
    h = Harness()
    h.node("n1", streaming_node_register("n1", streams=1))
    sid = _stream_session(h)
    h.chunk("c1", sid, 0, 0, CHUNK)
    job = _assign(h, "n1")
    h.client("c1", {"type": "session_close", "session_id": sid})
    h._apply(h.core.client_disconnected("c1", h.now))
    assert [c.job_id for c in h.to("n1", "job_cancel")] == [job.job_id]  # type: ignore[attr-defined]
    assert h.core.registry.nodes["n1"].stream_jobs == set()
    other = _stream_session(h, "c9")
    h.chunk("c9", other, 0, 0, CHUNK)
    assert _assign(h, "n1").stream


def test_a_stream_not_acked_in_time_moves_to_another_streaming_node() -> None:
    h = Harness(ack_timeout_s=2.0)
    h.node("n1", streaming_node_register("n1"))
    sid = _stream_session(h)
    h.chunk("c1", sid, 0, 0, CHUNK)
    _assign(h, "n1")
    h.node("n2", streaming_node_register("n2"))
    h.chunk("c1", sid, 0, 1, CHUNK)
    h.advance(2.5)
    assert [c.reason for c in h.to("n1", "job_cancel")] == ["ack timeout"]  # type: ignore[attr-defined]
    again = _assign(h, "n2")
    assert again.stream
    assert again.audio.to_bytes() == CHUNK * 2
    assert again.next_seq == 2
    assert h.core.registry.nodes["n1"].stream_jobs == set()


def test_a_bug_after_a_stream_is_accepted_still_ends_its_index(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = Harness()
    h.node("n1", node_register("n1"))
    sid = _stream_session(h)
    h.chunk("c1", sid, 0, 0, CHUNK)

    def broken(*args: object, **kwargs: object) -> list[object]:
        raise RuntimeError("bug")

    monkeypatch.setattr(h.core._clients.stream_side, "_whole_jobs", broken)
    h.chunk("c1", sid, 0, 1, CHUNK, is_final=True)
    [error] = _finals(h, "c1")
    assert error.code == "INTERNAL_ERROR"  # type: ignore[attr-defined]
    assert error.utterance_index == 0  # type: ignore[attr-defined]
    assert h.core.sessions[sid].sequencer.pending() == 0


def test_the_first_chunks_pipeline_is_the_utterances_streamed_or_buffered() -> None:
    """Speech off for one utterance travels on its first chunk; a later chunk cannot change
    it, and an utterance without one takes the session's pipeline."""
    h = Harness()
    h.node("s1", streaming_node_register("s1", streams=1))
    h.node("n1", node_register("n1"))
    sid = _stream_session(h)
    no_tts = {"use_asr": True, "use_nmt": True, "use_tts": False}
    h.chunk("c1", sid, 0, 0, CHUNK, pipeline=no_tts)
    h.chunk("c1", sid, 0, 1, CHUNK, is_final=True, pipeline={"use_tts": True})
    streamed = _assign(h, "s1")
    assert streamed.stream
    assert streamed.pipeline is not None
    assert streamed.pipeline.use_tts is False
    h.chunk("c1", sid, 1, 0, CHUNK, pipeline=no_tts)  # the one stream slot is taken: buffered
    h.chunk("c1", sid, 1, 1, CHUNK, is_final=True)
    buffered = _assign(h, "n1")
    assert not buffered.stream
    assert buffered.pipeline is not None
    assert buffered.pipeline.use_tts is False
    h.chunk("c1", sid, 2, 0, CHUNK, is_final=True)
    plain = [m for m in h.to("n1", "job_assign") + h.to("s1", "job_assign")]
    assert plain
    assert all(m.pipeline is None or m.pipeline.use_tts for m in plain)  # type: ignore[attr-defined]
