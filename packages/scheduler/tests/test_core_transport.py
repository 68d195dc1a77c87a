"""The audio transport (binary frames or JSON) is decided by the core, once per connection, as
a `SetAudioTransport` action before the ack; the shell only obeys it."""

from __future__ import annotations

from lingua_scheduler import Send, SetAudioTransport
from lingua_scheduler.testing import Harness, node_register


def _transport_then_ack(actions: list[object], conn: str, ack: str) -> bool:
    kinds = [
        "transport" if isinstance(a, SetAudioTransport) else a.message.type
        for a in actions
        if isinstance(a, SetAudioTransport | Send) and a.conn_id == conn
    ]
    return kinds[:2] == ["transport", ack]


def test_a_session_that_negotiated_binary_frames_gets_them_and_one_that_did_not_gets_json() -> None:
    h = Harness()
    binary = h.client(
        "c1", {"type": "session_init", "src_lang": "en", "tgt_lang": "zh", "binary_audio": True}
    )
    plain = h.client("c2", {"type": "session_init", "src_lang": "en", "tgt_lang": "zh"})
    assert _transport_then_ack(binary, "c1", "session_init_ack")
    assert [a.binary for a in binary if isinstance(a, SetAudioTransport)] == [True]
    assert [a.binary for a in plain if isinstance(a, SetAudioTransport)] == [False]


def test_a_resumed_session_keeps_the_transport_it_negotiated_on_its_new_connection() -> None:
    h = Harness()
    h.client(
        "c1", {"type": "session_init", "src_lang": "en", "tgt_lang": "zh", "binary_audio": True}
    )
    token = h.take("c1", "session_init_ack")[0].resume_token  # type: ignore[attr-defined]
    h._apply(h.core.client_disconnected("c1", h.now))
    resumed = h.client(
        "c9", {"type": "session_init", "src_lang": "en", "tgt_lang": "zh", "resume_token": token}
    )
    assert _transport_then_ack(resumed, "c9", "session_init_ack")
    assert [a for a in resumed if isinstance(a, SetAudioTransport)] == [
        SetAudioTransport("c9", True)
    ]


def test_a_node_gets_the_transport_it_registered_with() -> None:
    h = Harness()
    binary = h.node("n1", node_register("a", binary_audio=True))
    plain = h.node("n2", node_register("b"))
    assert _transport_then_ack(binary, "n1", "node_register_ack")
    assert SetAudioTransport("n1", True) in binary
    assert SetAudioTransport("n2", False) in plain


def test_a_refused_session_init_sets_no_transport() -> None:
    h = Harness()
    actions = h.client(
        "c1",
        {
            "type": "session_init",
            "src_lang": "en",
            "tgt_lang": "zh",
            "binary_audio": True,
            "resume_token": "unknown",
        },
    )
    assert not [a for a in actions if isinstance(a, SetAudioTransport)]
    assert h.to("c1", "error")[0].code == "INVALID_SESSION"  # type: ignore[attr-defined]
