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
