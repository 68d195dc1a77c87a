"""The session core's streaming mode driven with events: no sockets, no sleeping, a fake clock.

Chunk sizes here are small (`min_chunk_bytes=1000`, `max_chunk_bytes=4000`) so the slicing
rules show with a few bytes."""

from __future__ import annotations

import random

from lingua_client._session import Backoff, ClientSession
from lingua_protocol import (
    AsrPartial,
    AudioChunk,
    Error,
    ErrorCode,
    PipelineConfig,
    SessionInit,
    SessionInitAck,
    TranslationResult,
    Utterance,
)

PIECE = b"\x01\x00" * 600  # 1,200 bytes


def new_session(**kw: object) -> ClientSession:
    return ClientSession(
        SessionInit(src_lang="en", tgt_lang="en", enable_streaming_asr=True),
        backoff=Backoff(0.5, 4.0),
        rng=random.Random(7),
        min_chunk_bytes=1000,
        max_chunk_bytes=4000,
        **kw,  # type: ignore[arg-type]
    )


def ack(
    sid: str = "s1", token: str = "tok1", streaming: bool = True, **kw: object
) -> SessionInitAck:
    return SessionInitAck(session_id=sid, resume_token=token, streaming=streaming, **kw)  # type: ignore[arg-type]


def shape(sent: list[Utterance | AudioChunk]) -> list[tuple[str, int, int, int, bool]]:
    """(type, wire index, seq or -1, audio bytes, is_final) of each message."""
    out = []
    for m in sent:
        if isinstance(m, AudioChunk):
            out.append(("chunk", m.utterance_index, m.seq, len(m.payload), m.is_final))
        else:
            out.append(("utterance", m.utterance_index, -1, len(m.audio), True))
    return out


def partial(index: int, revision: int, text: str = "", sid: str = "s1") -> AsrPartial:
    return AsrPartial(
        session_id=sid,
        utterance_index=index,
        text=text or f"r{revision}",
        stable_text="",
        revision=revision,
    )


def result(sid: str, index: int, text: str = "") -> TranslationResult:
    return TranslationResult(
        session_id=sid, utterance_index=index, text_translated=text or f"t{index}"
    )


def test_a_granted_stream_goes_as_chunks_from_seq_0_and_the_last_one_is_final() -> None:
    s = new_session()
    s.opened(ack(), 0.0)
    i = s.open_stream(now=0.0)
    assert s.utterances_to_send(0.0) == []  # nothing to say yet
    assert s.append_stream(i, PIECE, 0.1)
    assert shape(s.utterances_to_send(0.1)) == [("chunk", 0, 0, 1200, False)]
    assert s.append_stream(i, PIECE[:600], 0.2)
    assert s.utterances_to_send(0.2) == []  # under the minimum chunk: it waits
    assert s.append_stream(i, PIECE, 0.3)
    assert shape(s.utterances_to_send(0.3)) == [("chunk", 0, 1, 1800, False)]
    s.close_stream(i, 0.4)
    assert shape(s.utterances_to_send(0.4)) == [("chunk", 0, 2, 0, True)]
    assert s.utterances_to_send(0.5) == []
    assert s.in_flight == 1


def test_a_stream_said_before_the_connection_opens_goes_in_chunks_of_at_most_the_maximum() -> None:
    s = new_session()
    i = s.open_stream(now=0.0)
    for _ in range(5):
        s.append_stream(i, PIECE, 0.0)  # 6,000 bytes while offline
    s.opened(ack(), 1.0)
    assert shape(s.utterances_to_send(1.0)) == [
        ("chunk", 0, 0, 4000, False),
        ("chunk", 0, 1, 2000, False),
    ]


def test_without_a_streaming_grant_a_stream_goes_whole_once_the_speaker_finishes() -> None:
    s = new_session()
    s.opened(ack(streaming=False), 0.0)  # a v0.1 scheduler
    i = s.open_stream(now=0.0)
    s.append_stream(i, PIECE, 0.1)
    later = s.submit(PIECE, now=0.1)  # said after it: waits behind it, in order
    assert s.utterances_to_send(0.1) == []
    s.close_stream(i, 0.5)
    assert shape(s.utterances_to_send(0.5)) == [
        ("utterance", 0, -1, 1200, True),
        ("utterance", 1, -1, 1200, True),
    ]
    assert later == 1


def test_a_finished_stream_still_waiting_for_the_window_goes_whole() -> None:
    s = new_session()
    s.opened(ack(max_in_flight_utterances=1), 0.0)
    s.submit(PIECE, now=0.0)
    assert len(s.utterances_to_send(0.0)) == 1
    i = s.open_stream(now=0.1)
    s.append_stream(i, PIECE, 0.1)
    assert s.utterances_to_send(0.1) == []  # the first chunk opens an utterance: window full
    s.close_stream(i, 0.2)
    s.received(result("s1", 0), 0.3)
    assert shape(s.utterances_to_send(0.3)) == [("utterance", 1, -1, 1200, True)]


def test_the_first_chunk_takes_a_window_slot_and_later_chunks_are_never_held_back() -> None:
    s = new_session()
    s.opened(ack(max_in_flight_utterances=1), 0.0)
    i = s.open_stream(now=0.0)
    s.append_stream(i, PIECE, 0.0)
    s.submit(PIECE, now=0.0)
    assert shape(s.utterances_to_send(0.0)) == [("chunk", 0, 0, 1200, False)]
    s.append_stream(i, PIECE, 0.1)
    assert shape(s.utterances_to_send(0.1)) == [("chunk", 0, 1, 1200, False)]
    assert s.queued == 1  # the whole utterance waits for the stream's answer
    s.close_stream(i, 0.2)
    s.utterances_to_send(0.2)
    s.received(result("s1", 0), 0.5)
    assert shape(s.utterances_to_send(0.5)) == [("utterance", 1, -1, 1200, True)]


def test_partials_pass_on_newest_revision_only_and_never_after_the_final_answer() -> None:
    s = new_session()
    s.opened(ack("s1"), 0.0)
    s.submit(PIECE, now=0.0)  # local 0, answered in the first session
    s.utterances_to_send(0.0)
    s.received(result("s1", 0), 0.1)
    s.connection_lost(0.2)
    s.refused(Error(code="INVALID_SESSION", message="restarted"), 0.3)
    s.opened(ack("s2", "tok2"), 0.3)
    s.deliveries()
    i = s.open_stream(now=1.0)  # local 1, wire 0 of the new session
    s.append_stream(i, PIECE, 1.0)
    s.utterances_to_send(1.25)  # its first audio goes out at 1.25
    s.received(partial(0, 1, "hel", sid="s2"), 1.5)
    s.received(partial(0, 1, "dup", sid="s2"), 1.6)  # same revision: stale
    s.received(partial(0, 0, "old", sid="s2"), 1.7)  # lower revision: stale
    s.received(partial(0, 3, "hello wor", sid="s2"), 1.8)
    s.received(partial(7, 9, "never sent", sid="s2"), 1.8)
    s.close_stream(i, 2.0)
    s.utterances_to_send(2.0)
    s.received(result("s2", 0, "hello world"), 2.5)
    s.received(partial(0, 4, "late", sid="s2"), 2.7)  # after the final: ignored
    out = s.deliveries()
    assert [(d.message.type, getattr(d.message, "utterance_index", None)) for d in out] == [
        ("asr_partial", 1),
        ("asr_partial", 1),
        ("translation_result", 1),
    ]
    assert [getattr(d.message, "text", None) for d in out[:2]] == ["hel", "hello wor"]
    assert out[0].t_ms == 250.0
    assert out[1].t_ms == 550.0
    assert out[2].latency_ms == 500.0  # from the end of its audio


def test_a_room_members_partial_passes_unchanged() -> None:
    s = new_session()
    s.opened(ack(), 0.0)
    other = partial(0, 5, "hola").model_copy(
        update={"speaker_session_id": "s9", "room_code": "123456"}
    )
    s.received(other, 0.1)
    [d] = s.deliveries()
    assert d.message == other
    assert s.unanswered == 0


def test_a_resume_streams_the_utterance_again_from_seq_0_under_the_same_index() -> None:
    s = new_session()
    s.opened(ack(), 0.0)
    i = s.open_stream(now=0.0)
    s.append_stream(i, PIECE, 0.0)
    s.append_stream(i, PIECE, 0.0)
    s.utterances_to_send(0.0)
    s.connection_lost(0.5)
    s.append_stream(i, PIECE, 0.6)  # said while the connection was down
    s.opened(ack(resumed=True), 1.0)
    # the same chunks again (the scheduler drops a seq it holds), then what is new
    assert shape(s.utterances_to_send(1.0)) == [
        ("chunk", 0, 0, 2400, False),
        ("chunk", 0, 1, 1200, False),
    ]
    s.close_stream(i, 1.1)
    assert shape(s.utterances_to_send(1.1)) == [("chunk", 0, 2, 0, True)]
    s.connection_lost(1.2)
    s.opened(ack(resumed=True), 1.3)
    assert shape(s.utterances_to_send(1.3))[-1] == ("chunk", 0, 2, 0, True)


def test_after_a_restart_a_finished_stream_goes_whole_and_an_open_one_streams_again() -> None:
    s = new_session()
    s.opened(ack("s1"), 0.0)
    done = s.open_stream(now=0.0)
    s.append_stream(done, PIECE, 0.0)
    assert len(s.utterances_to_send(0.0)) == 1
    s.close_stream(done, 0.1)
    talking = s.open_stream(now=0.2)
    s.append_stream(talking, PIECE, 0.2)
    assert shape(s.utterances_to_send(0.2)) == [
        ("chunk", 0, 1, 0, True),
        ("chunk", 1, 0, 1200, False),
    ]
    s.connection_lost(0.5)
    s.refused(Error(code="INVALID_SESSION", message="restarted"), 1.0)
    s.opened(ack("s2", "tok2"), 1.0)
    assert shape(s.utterances_to_send(1.0)) == [
        ("utterance", 0, -1, 1200, True),
        ("chunk", 1, 0, 1200, False),
    ]
    s.received(partial(1, 1, "again", sid="s2"), 1.2)  # revisions count per session
    assert [d.message.type for d in s.deliveries()] == ["asr_partial"]


def test_a_rate_limited_first_chunk_is_streamed_again_from_seq_0_and_its_echoes_ignored() -> None:
    s = new_session()
    s.opened(ack(), 0.0)
    i = s.open_stream(now=0.0)
    s.append_stream(i, PIECE, 0.0)
    s.utterances_to_send(0.0)
    s.append_stream(i, PIECE, 0.1)
    s.utterances_to_send(0.1)
    s.received(Error(code="RATE_LIMITED", message="slow", session_id="s1", utterance_index=0), 0.2)
    s.received(
        Error(
            code="INVALID_MESSAGE",
            message="seq 1 of an index never opened",
            session_id="s1",
            utterance_index=0,
        ),
        0.2,
    )
    assert s.deliveries() == []
    deadline = s.next_deadline()
    assert deadline is not None
    assert shape(s.utterances_to_send(deadline)) == [
        ("chunk", 0, 0, 1200, False),
        ("chunk", 0, 1, 1200, False),
    ]
    s.received(Error(code="INTERNAL_ERROR", message="x", session_id="s1", utterance_index=0), 1.0)
    assert [d.message.type for d in s.deliveries()] == ["error"]  # a real answer now


def test_a_stream_reserves_its_longest_size_and_refuses_audio_beyond_it() -> None:
    s = new_session(max_stream_bytes=3000, max_unanswered_bytes=5500)
    s.opened(ack(), 0.0)
    i = s.open_stream(now=0.0)
    assert s.append_stream(i, PIECE, 0.0)
    assert s.append_stream(i, PIECE, 0.0)
    assert not s.append_stream(i, PIECE, 0.0)  # 3,600 > 3,000: the caller cuts here
    second = s.open_stream(now=0.0)  # 3,000 reserved + 3,000 > 5,500
    out = s.deliveries()
    assert [(d.message.type, getattr(d.message, "code", None)) for d in out] == [
        ("error", ErrorCode.MESSAGE_TOO_LARGE)
    ]
    assert getattr(out[0].message, "utterance_index", None) == second
    assert not s.append_stream(second, PIECE, 0.0)
    s.close_stream(i, 0.1)  # releases what it did not use: 2,400 held now
    assert s.open_stream(now=0.2) == 2
    assert s.deliveries() == []


def test_the_acks_max_stream_ms_lowers_the_reservation() -> None:
    s = new_session()
    s.opened(ack(max_stream_ms=50), 0.0)  # 1,600 bytes
    i = s.open_stream(now=0.0)
    assert s.append_stream(i, PIECE, 0.0)
    assert not s.append_stream(i, PIECE, 0.0)


def test_a_stream_waiting_for_its_end_sets_no_deadline() -> None:
    s = new_session()
    s.opened(ack(streaming=False), 0.0)
    i = s.open_stream(now=0.0)
    s.append_stream(i, PIECE, 0.1)
    assert s.utterances_to_send(0.1) == []
    assert s.next_deadline(0.1) is None  # close_stream is what lets it go


def test_an_utterances_own_pipeline_travels_on_its_first_chunk_only() -> None:
    s = new_session()
    s.opened(ack(), 0.0)
    no_tts = PipelineConfig(use_tts=False)
    i = s.open_stream(now=0.0, pipeline=no_tts)
    s.append_stream(i, PIECE, 0.0)
    first = s.utterances_to_send(0.0)
    s.append_stream(i, PIECE, 0.1)
    later = s.utterances_to_send(0.1)
    assert [m.pipeline for m in first] == [no_tts]
    assert [m.pipeline for m in later] == [None]
    j = s.open_stream(now=0.2)  # none of its own: the session's applies
    s.append_stream(j, PIECE, 0.2)
    assert [m.pipeline for m in s.utterances_to_send(0.2)] == [None]
