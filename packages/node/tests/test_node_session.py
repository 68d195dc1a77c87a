"""The node session's decisions, driven with messages alone: no socket, no model, no sleep."""

from __future__ import annotations

import pytest
from lingua_node._session import (
    Beat,
    Close,
    KeepCredential,
    NodeSession,
    Phase,
    RegisterRefused,
    Reload,
    Send,
    StartJob,
)
from lingua_protocol import (
    AudioData,
    Error,
    InstalledModel,
    JobAck,
    JobAssign,
    JobCancel,
    JobResult,
    NodeControl,
    NodeRegister,
    NodeRegisterAck,
    PairingCode,
    PairingCodeRequest,
    ResourceUsage,
)

REGISTER = NodeRegister(node_id="n1", max_concurrent_jobs=1)


def job(n: int, attempt: str = "a1") -> JobAssign:
    return JobAssign(
        job_id=f"job-{n}",
        attempt_id=attempt,
        session_id="s1",
        utterance_index=n,
        src_lang="en",
        tgt_lang="en",
        audio=AudioData.from_bytes(b"\x00\x00" * 160),
    )


def result(assign: JobAssign, audio: bytes | None = None) -> JobResult:
    return JobResult(
        job_id=assign.job_id,
        attempt_id=assign.attempt_id,
        node_id="n1",
        session_id=assign.session_id,
        utterance_index=assign.utterance_index,
        success=True,
        text_asr="hello",
        tts_audio=AudioData.from_bytes(audio) if audio is not None else None,
    )


def registered(*, binary: bool = False, max_jobs: int = 1, **kw: bool) -> NodeSession:
    session = NodeSession("n1", max_jobs, **kw)
    assert session.connected(REGISTER) == [Send(REGISTER)]
    session.registered(NodeRegisterAck(node_id="n1", status="ready", binary_audio=binary))
    return session


def sent(actions: list[object]) -> list[str]:
    return [a.message.type for a in actions if isinstance(a, Send)]


def test_register_ack_registers_and_asks_for_a_pairing_code_when_wanted() -> None:
    session = NodeSession("n1", 1, request_pairing=True)
    session.connected(REGISTER)
    actions = session.registered(NodeRegisterAck(node_id="n1", status="ready"))
    assert session.phase is Phase.REGISTERED
    assert session.status == "ready"
    assert actions == [Send(PairingCodeRequest(node_id="n1"))]
    session.received(PairingCode(node_id="n1", code="123456", expires_in_s=300))
    assert session.pairing_code == "123456"


@pytest.mark.parametrize(("code", "fatal"), [("UNAUTHORIZED", True), ("NODE_ID_CONFLICT", True)])
def test_a_refused_register_is_fatal_for_credentials_and_conflicts(code: str, fatal: bool) -> None:
    session = NodeSession("n1", 1)
    session.connected(REGISTER)
    with pytest.raises(RegisterRefused) as refused:
        session.registered(Error(code=code, message="no"))
    assert refused.value.fatal is fatal


def test_any_other_first_reply_is_a_retryable_refusal() -> None:
    session = NodeSession("n1", 1)
    session.connected(REGISTER)
    with pytest.raises(RegisterRefused) as refused:
        session.registered(Error(code="INTERNAL_ERROR", message="busy"))
    assert not refused.value.fatal
    with pytest.raises(RegisterRefused):
        session.registered(job(0))


def test_a_job_is_acked_and_started_then_its_result_sent() -> None:
    session = registered()
    assign = job(0)
    actions = session.received(assign)
    assert isinstance(actions[0], Send)
    assert isinstance(actions[0].message, JobAck)
    assert actions[1] == StartJob(assign)
    assert session.may_start(assign)
    done = session.job_finished(assign, result(assign))
    assert done == [Send(result(assign), binary=False)]
    assert session.book.done == 1
    assert session.book.idle


def test_a_full_node_refuses_with_node_overloaded_and_starts_nothing() -> None:
    session = registered(max_jobs=1)
    session.received(job(0))
    actions = session.received(job(1))
    assert len(actions) == 1
    assert isinstance(actions[0], Send)
    refusal = actions[0].message
    assert isinstance(refusal, JobResult)
    assert not refusal.success
    assert refusal.error is not None
    assert refusal.error.code == "NODE_OVERLOADED"


def test_a_cancelled_attempt_is_not_started_and_its_result_discarded() -> None:
    session = registered()
    assign = job(0)
    session.received(assign)
    session.received(JobCancel(job_id="job-0", attempt_id="a1", reason="reassigned"))
    assert not session.may_start(assign)
    assert session.job_finished(assign, result(assign)) == []
    assert session.book.discarded == 1


def test_cancel_for_another_attempt_leaves_this_one_running() -> None:
    session = registered()
    assign = job(0, attempt="a2")
    session.received(assign)
    session.received(JobCancel(job_id="job-0", attempt_id="a1"))
    assert session.may_start(assign)


def test_drain_refuses_new_jobs_with_node_unavailable_and_resume_takes_them_again() -> None:
    session = registered()
    assert session.received(NodeControl(command="drain")) == [Beat()]
    refusal = session.received(job(0))[0]
    assert isinstance(refusal, Send)
    assert isinstance(refusal.message, JobResult)
    assert refusal.message.error is not None
    assert refusal.message.error.code == "NODE_UNAVAILABLE"
    session.received(NodeControl(command="resume"))
    assert StartJob(job(1)) in session.received(job(1))


def test_shutdown_waits_for_the_running_job_then_closes() -> None:
    session = registered()
    assign = job(0)
    session.received(assign)
    assert session.received(NodeControl(command="shutdown")) == [Beat()]
    assert session.phase is Phase.REGISTERED
    actions = session.job_finished(assign, result(assign))
    assert sent(actions) == ["job_result"]
    assert actions[-1] == Close("shutdown")
    assert session.phase is Phase.STOPPED


def test_shutdown_when_idle_closes_at_once() -> None:
    session = registered()
    assert session.received(NodeControl(command="shutdown")) == [Beat(), Close("shutdown")]


def test_local_stop_drains_and_closes_once_idle() -> None:
    session = registered()
    assign = job(0)
    session.received(assign)
    assert session.local_stop() == [Beat()]
    assert session.heartbeat(1, ResourceUsage(), None).draining is True
    assert session.job_finished(assign, result(assign))[-1] == Close("shutdown")


def test_reload_config_reloads_then_beats_with_the_new_capabilities() -> None:
    session = registered()
    assert session.received(NodeControl(command="reload_config")) == [Reload(), Beat()]
    session.capabilities_changed = True  # what the shell sets after the reload
    model = InstalledModel(model_id="m", kind="asr", version="1", languages=["en"])
    updated = REGISTER.model_copy(update={"installed_models": [model]})
    beat = session.heartbeat(5, ResourceUsage(), updated)
    assert beat.installed_models == [model]
    assert not session.capabilities_changed
    plain = session.heartbeat(6, ResourceUsage(), None)
    assert plain.installed_models is None


def test_audio_goes_binary_only_when_both_sides_agreed() -> None:
    agreed = registered(binary=True)
    assign = job(0)
    agreed.received(assign)
    assert agreed.job_finished(assign, result(assign, b"\x00\x00"))[0] == Send(
        result(assign, b"\x00\x00"), binary=True
    )
    agreed.received(job(1))
    text_only = agreed.job_finished(job(1), result(job(1)))[0]
    assert isinstance(text_only, Send)
    assert not text_only.binary
    refused = registered(binary=True, binary_audio=False)
    refused.received(assign)
    plain = refused.job_finished(assign, result(assign, b"\x00\x00"))[0]
    assert isinstance(plain, Send)
    assert not plain.binary


def test_a_disconnect_drops_running_attempts_and_sends_no_late_result() -> None:
    session = registered()
    assign = job(0)
    session.received(assign)
    session.disconnected()
    assert not session.may_start(assign)
    assert session.job_finished(assign, result(assign)) == []
    assert session.phase is Phase.DISCONNECTED


def test_the_credential_rides_in_every_register_and_a_handed_one_is_kept() -> None:
    session = NodeSession("n1", 1, credential=None)
    assert session.connected(REGISTER) == [Send(REGISTER)]
    actions = session.registered(NodeRegisterAck(node_id="n1", node_credential="c" * 43))
    assert actions == [KeepCredential("c" * 43)]
    sent_again = session.connected(REGISTER)[0]
    assert isinstance(sent_again, Send)
    assert isinstance(sent_again.message, NodeRegister)
    assert sent_again.message.node_credential == "c" * 43
    assert session.registered(NodeRegisterAck(node_id="n1", node_credential="c" * 43)) == []


def test_a_node_id_conflict_after_registration_stops_the_node_for_good() -> None:
    session = registered()
    actions = session.received(Error(code="NODE_ID_CONFLICT", message="taken over"))
    assert actions == [Close("NODE_ID_CONFLICT: taken over", fatal=True)]
    assert session.phase is Phase.STOPPED
