"""`lingua_scheduler`'s public API: the core, its actions and error type, the shell, the
settings, and the injected sources, importable from the package itself."""

from __future__ import annotations

import lingua_scheduler


def test_the_core_and_its_actions_are_public() -> None:
    for name in (
        "SchedulerCore",
        "SchedulerServer",
        "SchedulerSettings",
        "Send",
        "Close",
        "SetAudioTransport",
        "Action",
        "CoreError",
        "Randomness",
        "Observer",
        "CredentialStore",
    ):
        assert name in lingua_scheduler.__all__
        assert hasattr(lingua_scheduler, name)


def test_every_exported_name_resolves() -> None:
    missing = [n for n in lingua_scheduler.__all__ if not hasattr(lingua_scheduler, n)]
    assert missing == []


def test_a_core_error_becomes_one_error_naming_its_field_and_index() -> None:
    from lingua_protocol import ErrorCode

    error = lingua_scheduler.CoreError(
        ErrorCode.RATE_LIMITED, "slow down", field="audio", utterance_index=3
    ).to_message()
    assert (error.code, error.message, error.details, error.utterance_index) == (
        "RATE_LIMITED",
        "slow down",
        {"field": "audio"},
        3,
    )


def test_a_refusal_inside_the_core_reaches_only_the_sender() -> None:
    """A room join with a bad code raises CoreError deep in the room table; the entry point
    answers the sender with one error and sends nothing to anyone else."""
    from lingua_scheduler.testing import Harness

    h = Harness()
    h.open_session("c1")
    h.open_session("c2")
    h.sent.clear()
    actions = h.client("c2", {"type": "room_join", "room_code": "12ab56", "display_name": "x"})
    assert [(a.conn_id, a.message.type) for a in actions] == [("c2", "error")]  # type: ignore[union-attr]
    assert h.to("c2", "error")[0].code == "INVALID_ROOM_CODE"  # type: ignore[attr-defined]
