"""The node session's decisions for streaming jobs, with messages alone (no socket, model or
sleep): admission up to `max_streams`, the order of `job_audio`, cancel, shutdown."""

from __future__ import annotations

from lingua_node._session import (
    Close,
    EndStream,
    FeedStream,
    NodeSession,
    Send,
    StartStream,
)
from lingua_protocol import (
    AsrPartial,
    AudioData,
    JobAck,
    JobAssign,
    JobAudio,
    JobCancel,
    JobResult,
    NodeControl,
    NodeRegister,
    NodeRegisterAck,
)

CHUNK = AudioData.from_bytes(b"\x00\x00" * 1600)


def stream_job(n: int, attempt: str = "a1", **kw: object) -> JobAssign:
    return JobAssign(
        job_id=f"job-{n}",
        attempt_id=attempt,
        session_id="s1",
        utterance_index=n,
        src_lang="en",
        tgt_lang="en",
        audio=CHUNK,
        stream=True,
        **kw,
    )


def audio(n: int, seq: int, *, final: bool = False) -> JobAudio:
    return JobAudio(job_id=f"job-{n}", attempt_id="a1", seq=seq, is_final=final, payload=CHUNK)


def registered(max_streams: int = 2) -> NodeSession:
    session = NodeSession("n1", 1, max_streams=max_streams)
    session.connected(NodeRegister(node_id="n1"))
    session.registered(NodeRegisterAck(node_id="n1", status="ready"))
    return session


def partial(job: JobAssign, revision: int) -> AsrPartial:
    return AsrPartial(
        session_id=job.session_id,
        utterance_index=job.utterance_index,
        text="hello wor",
        stable_text="hello",
        revision=revision,
    )


def ok(job: JobAssign) -> JobResult:
    return job.answer("n1", success=True, text_asr="hello world")


def refusal_code(actions: list[object]) -> str | None:
    [send] = actions
    assert isinstance(send, Send)
    assert isinstance(send.message, JobResult)
    assert not send.message.success
    assert send.message.error is not None
    return send.message.error.code


def test_a_stream_is_acked_and_started_and_more_than_max_streams_are_refused_overloaded() -> None:
    session = registered(max_streams=2)
    first, second, third = stream_job(1), stream_job(2), stream_job(3)
    actions = session.received(first)
    assert isinstance(actions[0], Send)
    assert isinstance(actions[0].message, JobAck)
    assert actions[1] == StartStream(first)
    session.received(second)
    assert refusal_code(session.received(third)) == "NODE_OVERLOADED"


def test_streams_do_not_take_the_place_of_whole_utterance_jobs() -> None:
    session = registered(max_streams=1)
    session.received(stream_job(1))
    whole = stream_job(2).model_copy(update={"stream": False})
    assert [type(a).__name__ for a in session.received(whole)] == ["Send", "StartJob"]


def test_a_node_without_streams_refuses_every_stream() -> None:
    assert refusal_code(registered(max_streams=0).received(stream_job(1))) == "NODE_OVERLOADED"


def test_audio_in_order_is_fed_a_resend_is_dropped_and_a_gap_fails_the_job() -> None:
    session = registered()
    job = stream_job(1, next_seq=3)
    session.received(job)
    key = ("job-1", "a1")
    assert session.received(audio(1, 3)) == [FeedStream(key, audio(1, 3))]
    assert session.received(audio(1, 3)) == []  # a resend
    actions = session.received(audio(1, 5))  # 4 went missing
    assert actions[0] == EndStream(key)
    [send] = [a for a in actions if isinstance(a, Send)]
    assert isinstance(send.message, JobResult)
    assert send.message.error is not None
    assert send.message.error.code == "INVALID_MESSAGE"
    assert session.received(audio(1, 4)) == []  # the stream is gone


def test_audio_after_the_final_chunk_and_for_unknown_jobs_is_dropped() -> None:
    session = registered()
    session.received(stream_job(1))
    assert len(session.received(audio(1, 0, final=True))) == 1
    assert session.received(audio(1, 1)) == []
    assert session.received(audio(9, 0)) == []
    assert session.streams.dropped_chunks == 2


def test_partials_and_one_result_go_out_while_held_and_nothing_once_cancelled() -> None:
    session = registered()
    job = stream_job(1)
    key = ("job-1", "a1")
    session.received(job)
    assert session.stream_partial(key, partial(job, 1)) == [Send(partial(job, 1))]
    assert session.received(JobCancel(job_id="job-1", attempt_id="a1")) == [EndStream(key)]
    assert session.stream_partial(key, partial(job, 2)) == []
    assert session.stream_finished(key, ok(job)) == []
    assert session.streams.idle


def test_the_result_ends_the_stream_exactly_once() -> None:
    session = registered()
    job = stream_job(1)
    key = ("job-1", "a1")
    session.received(job)
    assert session.stream_finished(key, ok(job)) == [Send(ok(job))]
    assert session.stream_finished(key, ok(job)) == []
    assert session.stream_failed(key, "INFERENCE_BACKEND_ERROR", "late") == []


def test_shutdown_refuses_new_streams_and_closes_once_the_running_stream_ended() -> None:
    session = registered()
    job = stream_job(1)
    key = ("job-1", "a1")
    session.received(job)
    actions = session.received(NodeControl(command="shutdown"))
    assert not any(isinstance(a, Close) for a in actions)
    assert refusal_code(session.received(stream_job(2))) == "NODE_UNAVAILABLE"
    session.received(audio(1, 0, final=True))
    actions = session.stream_finished(key, ok(job))
    assert actions[0] == Send(ok(job))
    assert isinstance(actions[-1], Close)


def test_a_lost_connection_forgets_every_stream() -> None:
    session = registered()
    session.received(stream_job(1))
    session.disconnected()
    assert session.streams.idle
    assert session.stream_finished(("job-1", "a1"), ok(stream_job(1))) == []


def test_a_closed_stream_assignment_takes_no_more_audio() -> None:
    session = registered()
    session.received(stream_job(1, stream_closed=True))
    assert session.received(audio(1, 0)) == []
