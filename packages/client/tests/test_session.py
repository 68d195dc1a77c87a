"""The client session core driven with events: no sockets, no sleeping, a fake clock."""

from __future__ import annotations

import random

from lingua_client._session import Backoff, ClientSession
from lingua_protocol import (
    Error,
    ErrorCode,
    MissingResult,
    PipelineConfig,
    SessionInit,
    SessionInitAck,
    TranslationResult,
    Utterance,
)

AUDIO = b"\x00\x01" * 800  # 1,600 bytes


def new_session(**kw: object) -> ClientSession:
    return ClientSession(
        SessionInit(src_lang="en", tgt_lang="en"),
        backoff=Backoff(0.5, 4.0),
        rng=random.Random(7),
        **kw,  # type: ignore[arg-type]
    )


def ack(sid: str = "s1", token: str = "tok1", **kw: object) -> SessionInitAck:
    return SessionInitAck(session_id=sid, resume_token=token, **kw)  # type: ignore[arg-type]


def result(sid: str, index: int, text: str = "") -> TranslationResult:
    return TranslationResult(
        session_id=sid, utterance_index=index, text_translated=text or f"t{index}"
    )


def indexes(sent: list[Utterance]) -> list[int]:
    return [u.utterance_index for u in sent]


def delivered(s: ClientSession) -> list[tuple[str, int | None, str]]:
    out = []
    for d in s.deliveries():
        m = d.message
        text = m.text_translated if isinstance(m, TranslationResult) else getattr(m, "code", "")
        out.append((m.type, getattr(m, "utterance_index", None), str(text)))
    return out


def test_utterances_wait_for_the_connection_and_go_in_order_once_open() -> None:
    s = new_session()
    for _ in range(3):
        s.submit(AUDIO, now=0.0)
    assert s.utterances_to_send(0.0) == []
    s.opened(ack(), 1.0)
    sent = s.utterances_to_send(1.0)
    assert indexes(sent) == [0, 1, 2]
    assert all(u.session_id == "s1" for u in sent)
    assert s.utterances_to_send(1.0) == []


def test_answers_are_passed_on_once_with_latency_from_the_end_of_speech() -> None:
    s = new_session()
    s.opened(ack(), 0.0)
    s.submit(AUDIO, now=1.0, spoken_at=0.5)
    s.utterances_to_send(1.0)
    s.received(result("s1", 0), 1.25)
    s.received(result("s1", 0), 1.5)  # a replay after a resume
    out = s.deliveries()
    assert len(out) == 1
    assert out[0].latency_ms == 750.0
    assert s.unanswered == 0


def test_the_window_holds_utterances_back_until_answers_come() -> None:
    s = new_session()
    s.opened(ack(max_in_flight_utterances=2, max_in_flight_bytes=4000), 0.0)
    for _ in range(5):
        s.submit(AUDIO, now=0.0)
    assert indexes(s.utterances_to_send(0.0)) == [0, 1]
    assert s.queued == 3
    s.received(result("s1", 0), 1.0)
    assert indexes(s.utterances_to_send(1.0)) == [2]
    s.received(result("s1", 2), 1.1)  # out of order on the wire: the window still frees
    assert indexes(s.utterances_to_send(1.1)) == [3]


def test_the_byte_window_limits_as_well_and_none_means_no_limit() -> None:
    s = new_session()
    s.opened(ack(max_in_flight_bytes=3500), 0.0)
    for _ in range(4):
        s.submit(AUDIO, now=0.0)
    assert indexes(s.utterances_to_send(0.0)) == [0, 1]  # 3,200 of 3,500 bytes
    unlimited = new_session()
    unlimited.opened(ack(), 0.0)
    for _ in range(50):
        unlimited.submit(AUDIO, now=0.0)
    assert len(unlimited.utterances_to_send(0.0)) == 50


def test_an_utterance_larger_than_the_byte_window_ends_in_an_error_not_a_hang() -> None:
    s = new_session()
    s.opened(ack(max_in_flight_bytes=1000), 0.0)
    s.submit(AUDIO, now=0.0)
    s.submit(AUDIO[:800], now=0.0)
    assert indexes(s.utterances_to_send(0.0)) == [0]  # the small one takes wire index 0
    assert delivered(s) == [("error", 0, ErrorCode.MESSAGE_TOO_LARGE)]
    s.received(result("s1", 0), 0.1)
    assert delivered(s) == [("translation_result", 1, "t0")]


def test_rate_limited_is_retried_after_backoff_under_the_same_index_not_shown() -> None:
    s = new_session()
    s.opened(ack(max_in_flight_utterances=4), 0.0)
    s.submit(AUDIO, now=0.0)
    s.submit(AUDIO, now=0.0)
    s.utterances_to_send(0.0)
    s.received(
        Error(code="RATE_LIMITED", message="slow down", session_id="s1", utterance_index=0), 1.0
    )
    assert s.deliveries() == []
    deadline = s.next_deadline()
    assert deadline is not None
    assert 1.25 <= deadline <= 1.5  # backoff 0.5 s, jittered
    assert s.utterances_to_send(1.1) == []
    assert indexes(s.utterances_to_send(deadline)) == [0]
    s.received(result("s1", 0), 2.0)
    s.received(result("s1", 1), 2.0)
    assert delivered(s) == [("translation_result", 0, "t0"), ("translation_result", 1, "t1")]


def test_a_missing_result_for_an_index_awaiting_its_retry_ends_it() -> None:
    s = new_session()
    s.opened(ack(), 0.0)
    s.submit(AUDIO, now=0.0)
    s.utterances_to_send(0.0)
    s.received(Error(code="RATE_LIMITED", message="x", session_id="s1", utterance_index=0), 0.1)
    s.received(MissingResult(session_id="s1", utterance_index=0, reason="gap"), 0.2)
    assert delivered(s) == [("missing_result", 0, "")]
    assert s.unanswered == 0
    assert s.utterances_to_send(5.0) == []


def test_a_resume_resends_what_is_unanswered_under_the_same_indexes() -> None:
    s = new_session()
    s.opened(ack(), 0.0)
    for _ in range(4):
        s.submit(AUDIO, now=0.0)
    s.utterances_to_send(0.0)
    s.received(result("s1", 0), 0.5)
    s.received(result("s1", 2), 0.5)
    s.connection_lost(1.0)
    init = s.opening_message()
    assert init.resume_token == "tok1"
    assert init.last_received_index == 0
    s.opened(ack(resumed=True), 2.0)
    assert indexes(s.utterances_to_send(2.0)) == [1, 3]
    s.received(result("s1", 2), 2.1)  # replayed: passed on before, not again
    s.received(result("s1", 1), 2.2)
    assert [d[1] for d in delivered(s)] == [0, 2, 1]


def test_a_refused_resume_opens_a_new_session_renumbered_with_captions_kept() -> None:
    s = new_session()
    s.opened(ack(), 0.0)
    for _ in range(3):
        s.submit(AUDIO, now=0.0)
    s.utterances_to_send(0.0)
    s.received(result("s1", 0, "first"), 0.5)
    s.connection_lost(1.0)
    s.submit(AUDIO, now=1.5)  # said during the outage
    refusal = Error(code="INVALID_SESSION", message="resume token unknown or expired")
    assert s.refused(refusal, 2.0) is True
    assert s.opening_message().resume_token is None
    s.opened(ack("s2", "tok2"), 2.5)
    sent = s.utterances_to_send(2.5)
    assert indexes(sent) == [0, 1, 2]
    assert {u.session_id for u in sent} == {"s2"}
    s.received(result("s1", 1, "stale"), 2.6)  # from the old session: ignored
    for wire, text in enumerate(["second", "third", "fourth"]):
        s.received(result("s2", wire, text), 3.0)
    got = delivered(s)
    assert got == [
        ("translation_result", 0, "first"),
        ("translation_result", 1, "second"),
        ("translation_result", 2, "third"),
        ("translation_result", 3, "fourth"),
    ]


def no_node(sid: str, index: int) -> Error:
    return Error(code="NO_AVAILABLE_NODE", message="no node", session_id=sid, utterance_index=index)


def restarted_session() -> ClientSession:
    """A session whose scheduler restarted at t=2: the resume refused, a new session open."""
    s = new_session()
    s.opened(ack(), 0.0)
    s.connection_lost(1.0)
    s.refused(Error(code="INVALID_SESSION", message="unknown token"), 2.0)
    s.opened(ack("s2", "tok2"), 2.0)
    return s


def test_after_a_restart_no_available_node_is_retried_under_a_new_index_until_nodes_return() -> (
    None
):
    s = restarted_session()
    s.submit(AUDIO, now=2.0)
    s.submit(AUDIO, now=2.0)
    assert indexes(s.utterances_to_send(2.0)) == [0, 1]
    s.received(no_node("s2", 0), 2.1)  # the node has not re-registered yet
    assert s.deliveries() == []
    assert s.unanswered == 2
    deadline = s.next_deadline()
    assert deadline is not None
    assert 2.1 < deadline <= 2.6
    assert indexes(s.utterances_to_send(deadline)) == [2]  # index 0 is closed at the scheduler
    s.received(result("s2", 1, "second"), 3.0)
    s.received(result("s2", 2, "first"), 3.1)
    assert delivered(s) == [("translation_result", 1, "second"), ("translation_result", 0, "first")]


def test_no_available_node_is_the_answer_on_a_first_session_and_after_the_grace() -> None:
    s = new_session()
    s.opened(ack(), 0.0)
    s.submit(AUDIO, now=0.0)
    s.utterances_to_send(0.0)
    s.received(no_node("s1", 0), 0.1)
    assert delivered(s) == [("error", 0, "NO_AVAILABLE_NODE")]
    late = restarted_session()
    late.submit(AUDIO, now=40.0)
    late.utterances_to_send(40.0)
    late.received(no_node("s2", 0), 40.0)  # 38 s after the restart: a pair nobody serves
    assert delivered(late) == [("error", 0, "NO_AVAILABLE_NODE")]


def test_a_session_refused_for_good_ends_every_unanswered_utterance_in_an_error() -> None:
    s = new_session()
    s.submit(AUDIO, now=0.0)
    s.submit(AUDIO, now=0.0)
    refusal = Error(code="INVALID_PAIRING_CODE", message="not found")
    assert s.refused(refusal, 0.1) is False
    assert delivered(s) == [
        ("error", 0, "INVALID_PAIRING_CODE"),
        ("error", 1, "INVALID_PAIRING_CODE"),
    ]
    s.submit(AUDIO, now=0.2)
    assert delivered(s) == [("error", 2, "INVALID_PAIRING_CODE")]
    assert s.unanswered == 0


def test_the_unanswered_backlog_is_bounded_in_bytes_with_an_error_beyond() -> None:
    s = new_session(max_unanswered_bytes=4000)
    assert [s.submit(AUDIO, now=0.0) for _ in range(3)] == [0, 1, 2]
    assert delivered(s) == [("error", 2, ErrorCode.MESSAGE_TOO_LARGE)]
    assert s.unanswered == 2


def test_backoff_doubles_up_to_its_cap_with_jitter_and_resets_on_open() -> None:
    s = new_session()
    delays = []
    for _ in range(6):
        s.connect_failed(0.0)
        delays.append(s.reconnect_delay_s())
    caps = [1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert all(c / 2 <= d <= c for d, c in zip(delays, caps, strict=True))
    s.opened(ack(), 0.0)
    assert 0.25 <= s.reconnect_delay_s() <= 0.5


def test_tts_off_travels_per_utterance_and_room_results_of_others_pass_unchanged() -> None:
    s = new_session()
    s.opened(ack(), 0.0)
    s.submit(AUDIO, now=0.0, pipeline=PipelineConfig(use_tts=False))
    [u] = s.utterances_to_send(0.0)
    assert u.pipeline is not None
    assert u.pipeline.use_tts is False
    other = TranslationResult(
        session_id="s1", utterance_index=0, speaker_session_id="s9", text_translated="hi"
    )
    s.received(other, 0.1)
    assert delivered(s) == [("translation_result", 0, "hi")]
    assert s.unanswered == 1  # someone else's index 0 does not answer ours


def test_a_room_error_is_a_room_row_and_never_answers_our_own_index() -> None:
    from lingua_client._captions import Captions
    from lingua_client._session import final_index
    from lingua_protocol import RoomError

    error = RoomError(
        room_code="123456",
        session_id="me",
        speaker_session_id="other",
        utterance_index=0,
        code="NO_AVAILABLE_NODE",
        message="no node for en->de",
        speaker_display_name="Bo",
    )
    assert final_index(error, "me") is None
    captions = Captions()
    captions.pending(0)
    row = captions.apply(error)
    assert row is not None
    assert row.speaker == "Bo"
    assert row.state == "error"
    assert captions.rows[0].state == "pending"


def test_a_full_window_has_no_deadline_so_the_writer_waits_for_an_answer() -> None:
    s = new_session()
    s.opened(ack(max_in_flight_utterances=1), 0.0)
    s.submit(AUDIO, now=0.0)
    s.submit(AUDIO, now=0.0)
    assert indexes(s.utterances_to_send(0.0)) == [0]
    assert s.next_deadline(0.5) is None  # only an answer can free the window
    s.received(result("s1", 0), 1.0)
    assert indexes(s.utterances_to_send(1.0)) == [1]
