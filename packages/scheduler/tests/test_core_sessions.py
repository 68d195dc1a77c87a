"""Core rules for sessions, resume, pairing, rooms and protection."""

from __future__ import annotations

from lingua_scheduler._core.ordering import Acceptance, ResultSequencer
from lingua_scheduler.testing import Harness, node_register


def test_resume_within_grace_delivers_results_produced_meanwhile() -> None:
    h = Harness(resume_grace_s=60.0)
    h.node("conn-a", node_register("a"))
    h.client("c1", {"type": "session_init", "src_lang": "en", "tgt_lang": "zh"})
    ack = h.take("c1", "session_init_ack")[0]
    h.utter("c1", ack.session_id, 0)
    job = h.take("conn-a", "job_assign")[0]
    h._apply(h.core.client_disconnected("c1", h.now))
    h.result("conn-a", job)
    h.advance(30.0)
    h.client(
        "c2",
        {
            "type": "session_init",
            "src_lang": "en",
            "tgt_lang": "zh",
            "resume_token": ack.resume_token,
        },
    )
    msgs = h.to("c2")
    assert msgs[0].type == "session_init_ack"
    assert msgs[0].resumed is True
    assert msgs[0].session_id == ack.session_id
    assert [(m.type, m.utterance_index) for m in msgs[1:]] == [("translation_result", 0)]


def test_resend_after_resume_is_not_duplicated() -> None:
    h = Harness()
    h.node("conn-a", node_register("a"))
    h.client("c1", {"type": "session_init", "src_lang": "en", "tgt_lang": "zh"})
    ack = h.take("c1", "session_init_ack")[0]
    h.utter("c1", ack.session_id, 0)
    h._apply(h.core.client_disconnected("c1", h.now))
    h.client(
        "c2",
        {
            "type": "session_init",
            "src_lang": "en",
            "tgt_lang": "zh",
            "resume_token": ack.resume_token,
        },
    )
    h.utter("c2", ack.session_id, 0)  # the client resends what it never saw answered
    assert len(h.to("conn-a", "job_assign")) == 1
    h.result("conn-a", h.take("conn-a", "job_assign")[0])
    h.utter("c2", ack.session_id, 0)  # resent again after its result: replayed, not rerun
    assert [m.utterance_index for m in h.to("c2", "translation_result")] == [0, 0]
    assert h.to("conn-a", "job_assign") == []


def test_resume_after_grace_is_refused() -> None:
    h = Harness(resume_grace_s=60.0)
    h.client("c1", {"type": "session_init", "src_lang": "en", "tgt_lang": "zh"})
    ack = h.take("c1", "session_init_ack")[0]
    h._apply(h.core.client_disconnected("c1", h.now))
    h.advance(61.0)
    h.client(
        "c2",
        {
            "type": "session_init",
            "src_lang": "en",
            "tgt_lang": "zh",
            "resume_token": ack.resume_token,
        },
    )
    assert h.to("c2", "error")[0].code == "INVALID_SESSION"


def test_session_close_flushes_pending_results_then_acks() -> None:
    h = Harness()
    h.node("conn-a", node_register("a"))
    sid = h.open_session("c1")
    h.utter("c1", sid, 0)
    h.client("c1", {"type": "session_close", "session_id": sid})
    assert h.to("c1", "session_close_ack") == []
    h.result("conn-a", h.take("conn-a", "job_assign")[0])
    assert [m.type for m in h.to("c1")] == ["translation_result", "session_close_ack"]
    assert ("c1", 1000) in h.closed


def test_heartbeat_is_echoed() -> None:
    h = Harness()
    sid = h.open_session("c1")
    h.client("c1", {"type": "client_heartbeat", "session_id": sid, "timestamp": 42})
    assert h.to("c1", "server_heartbeat")[0].timestamp == 42


def test_messages_before_session_init_are_invalid_session() -> None:
    h = Harness()
    h.client("c1", {"type": "utterance", "session_id": "x", "utterance_index": 2, "audio": ""})
    err = h.to("c1", "error")[0]
    assert err.code == "INVALID_SESSION"
    assert err.utterance_index == 2


def test_wrong_session_id_is_refused() -> None:
    h = Harness()
    h.open_session("c1")
    h.utter("c1", "sess-someone-else", 0)
    assert h.to("c1", "error")[0].details == {"field": "session_id"}


def test_unsupported_protocol_version_is_refused_and_closed() -> None:
    h = Harness()
    h.client(
        "c1",
        {"type": "session_init", "src_lang": "en", "tgt_lang": "zh", "protocol_version": "7.0"},
    )
    assert h.to("c1", "error")[0].code == "UNSUPPORTED_PROTOCOL_VERSION"
    assert h.closed == [("c1", 1008)]


def test_utterance_rate_limit() -> None:
    h = Harness(utterances_per_s=1.0, utterance_burst=2)
    h.node("conn-a", node_register("a", max_concurrent_jobs=10))
    sid = h.open_session("c1")
    for i in range(3):
        h.utter("c1", sid, i)
    assert len(h.to("conn-a", "job_assign")) == 2
    err = h.to("c1", "error")
    assert err[0].code == "RATE_LIMITED"
    assert err[0].utterance_index == 2


def test_pairing_binds_a_session_to_a_private_node() -> None:
    h = Harness()
    h.node("conn-p", node_register("private", accept_public_jobs=False))
    public = h.open_session("c0")
    h.utter("c0", public, 0)
    assert h.to("c0", "error")[0].code == "NO_AVAILABLE_NODE"
    h.node("conn-p", {"type": "pairing_code_request", "node_id": "private"})
    code = h.to("conn-p", "pairing_code")[0].code
    assert len(code) == 6
    assert code.isdigit()
    h.client(
        "c1", {"type": "session_init", "src_lang": "en", "tgt_lang": "zh", "pairing_code": code}
    )
    ack = h.take("c1", "session_init_ack")[0]
    assert ack.assigned_node_id == "private"
    h.utter("c1", ack.session_id, 0)
    assert len(h.to("conn-p", "job_assign")) == 1
    h.client(
        "c2", {"type": "session_init", "src_lang": "en", "tgt_lang": "zh", "pairing_code": code}
    )
    assert h.to("c2", "error")[0].code == "INVALID_PAIRING_CODE"  # single use


def test_pairing_codes_expire() -> None:
    h = Harness(pairing_code_ttl_s=300.0)
    h.node("conn-p", node_register("p"))
    h.node("conn-p", {"type": "pairing_code_request"})
    code = h.to("conn-p", "pairing_code")[0].code
    h.now += 301
    h.client(
        "c1", {"type": "session_init", "src_lang": "en", "tgt_lang": "zh", "pairing_code": code}
    )
    assert h.to("c1", "error")[0].code == "INVALID_PAIRING_CODE"


def test_too_many_wrong_pairing_codes_are_rate_limited() -> None:
    h = Harness()
    for _ in range(5):
        h.client(
            "c1",
            {"type": "session_init", "src_lang": "en", "tgt_lang": "zh", "pairing_code": "000000"},
        )
    h.client(
        "c1", {"type": "session_init", "src_lang": "en", "tgt_lang": "zh", "pairing_code": "000000"}
    )
    codes = [m.code for m in h.to("c1", "error")]
    assert codes == ["INVALID_PAIRING_CODE"] * 5 + ["RATE_LIMITED"]
    h.now += 61
    h.client(
        "c1", {"type": "session_init", "src_lang": "en", "tgt_lang": "zh", "pairing_code": "000000"}
    )
    assert h.to("c1", "error")[-1].code == "INVALID_PAIRING_CODE"


def test_room_with_three_members_in_two_languages_makes_two_jobs() -> None:
    h = Harness()
    h.node(
        "conn-a",
        node_register("a", pairs=(("en", "zh"), ("en", "fr"), ("zh", "en")), max_concurrent_jobs=8),
    )
    ana = h.open_session("ana", "en", "zh")
    h.client("ana", {"type": "room_create", "display_name": "Ana", "preferred_lang": "en"})
    code = h.to("ana", "room_create_ack")[0].room_code
    li = h.open_session("li", "zh", "en")
    h.client(
        "li", {"type": "room_join", "room_code": code, "display_name": "Li", "preferred_lang": "zh"}
    )
    wang = h.open_session("wang", "zh", "en")
    h.client(
        "wang",
        {"type": "room_join", "room_code": code, "display_name": "Wang", "preferred_lang": "zh"},
    )
    marie = h.open_session("marie", "fr", "en")
    h.client(
        "marie",
        {"type": "room_join", "room_code": code, "display_name": "Marie", "preferred_lang": "fr"},
    )
    members = h.to("ana", "room_members")[-1].members
    assert {(m.session_id, m.preferred_lang) for m in members} == {
        (ana, "en"),
        (li, "zh"),
        (wang, "zh"),
        (marie, "fr"),
    }
    h.utter("ana", ana, 0)
    jobs = h.take("conn-a", "job_assign")
    assert sorted(j.tgt_lang for j in jobs) == ["fr", "zh"]
    for j in jobs:
        h.result("conn-a", j)
    for member, sid, lang in (("li", li, "zh"), ("wang", wang, "zh"), ("marie", marie, "fr")):
        got = h.to(member, "translation_result")
        assert [(r.session_id, r.tgt_lang, r.speaker_session_id) for r in got] == [(sid, lang, ana)]
        assert got[0].speaker_display_name == "Ana"
    speaker = h.to("ana", "translation_result")
    assert len(speaker) == 1
    assert speaker[0].text_asr == "asr 0"


def test_room_errors() -> None:
    h = Harness(room_max_members=2)
    h.open_session("a")
    h.client("a", {"type": "room_create", "preferred_lang": "en"})
    code = h.to("a", "room_create_ack")[0].room_code
    h.client("a", {"type": "room_create", "preferred_lang": "en"})
    assert h.to("a", "error")[-1].code == "ALREADY_IN_ROOM"
    h.open_session("b")
    h.client("b", {"type": "room_join", "room_code": "12ab", "preferred_lang": "zh"})
    assert h.to("b", "error")[-1].code == "INVALID_ROOM_CODE"
    other = "000000" if code != "000000" else "000001"
    h.client("b", {"type": "room_join", "room_code": other, "preferred_lang": "zh"})
    assert h.to("b", "error")[-1].code == "ROOM_NOT_FOUND"
    h.client("b", {"type": "room_join", "room_code": code, "preferred_lang": "zh"})
    h.open_session("c")
    h.client("c", {"type": "room_join", "room_code": code, "preferred_lang": "zh"})
    assert h.to("c", "error")[-1].code == "ROOM_FULL"
    h.client("b", {"type": "room_leave", "room_code": code})
    assert [m.session_id for m in h.to("a", "room_members")[-1].members] == [
        h.core.sessions.conns()["a"]
    ]


def test_idle_room_expires() -> None:
    h = Harness(room_idle_timeout_s=100.0)
    h.open_session("a")
    h.client("a", {"type": "room_create", "preferred_lang": "en"})
    h.advance(101.0)
    assert h.to("a", "room_expired")
    assert h.core.rooms.rooms == {}


def test_node_with_wrong_token_is_refused_and_closed() -> None:
    h = Harness(node_token="s3cret")
    h.node("conn-a", node_register("a", auth_token="guess"))
    assert h.to("conn-a", "error")[0].code == "UNAUTHORIZED"
    assert h.closed == [("conn-a", 1008)]
    h.node("conn-b", node_register("b", auth_token="s3cret"))
    assert h.to("conn-b", "node_register_ack")[0].status == "ready"


def test_node_messages_before_register_are_refused() -> None:
    h = Harness()
    h.node("conn-a", {"type": "node_heartbeat", "node_id": "a", "timestamp": 1})
    assert h.to("conn-a", "error")[0].code == "INVALID_MESSAGE"


def test_sequencer_dedupes_and_replays() -> None:
    seq = ResultSequencer(gap_timeout_s=5.0)
    assert seq.accept(4) is Acceptance.NEW
    assert seq.accept(4) is Acceptance.IN_PROGRESS
    from lingua_protocol import MissingResult

    msg = MissingResult(session_id="s", utterance_index=4, reason="x")
    assert seq.finish(4, msg, 0.0) == [msg]
    assert seq.accept(4) is Acceptance.DELIVERED
    assert seq.replay(4) == msg


def test_a_speaker_gets_their_own_target_even_when_no_listener_shares_it() -> None:
    h = Harness()
    h.node("conn-a", node_register("a", pairs=(("en", "zh"), ("en", "fr")), max_concurrent_jobs=8))
    ana = h.open_session("ana", "en", "zh")
    h.client("ana", {"type": "room_create", "display_name": "Ana", "preferred_lang": "zh"})
    code = h.to("ana", "room_create_ack")[0].room_code
    h.open_session("marie", "fr", "en")
    h.client(
        "marie",
        {"type": "room_join", "room_code": code, "display_name": "Marie", "preferred_lang": "fr"},
    )
    h.utter("ana", ana, 0)
    jobs = h.take("conn-a", "job_assign")
    assert sorted(j.tgt_lang for j in jobs) == ["fr", "zh"]
    for j in jobs:
        h.result("conn-a", j)
    own = h.to("ana", "translation_result")
    assert [r.tgt_lang for r in own] == ["zh"]
    heard = h.to("marie", "translation_result")
    assert [r.tgt_lang for r in heard] == ["fr"]


def test_only_a_resumed_session_ack_says_resumed_and_what_was_delivered() -> None:
    h = Harness()
    h.client("c1", {"type": "session_init", "src_lang": "en", "tgt_lang": "zh"})
    new = h.take("c1", "session_init_ack")[0]
    assert "resumed" not in new.to_dict()
    assert "last_delivered_index" not in new.to_dict()
    h._apply(h.core.client_disconnected("c1", h.now))
    token = new.resume_token  # type: ignore[attr-defined]
    h.client(
        "c2", {"type": "session_init", "src_lang": "en", "tgt_lang": "zh", "resume_token": token}
    )
    resumed = h.take("c2", "session_init_ack")[0].to_dict()
    assert (resumed["resumed"], resumed["last_delivered_index"]) == (True, None)
    assert resumed["session_id"] == new.session_id  # type: ignore[attr-defined]
