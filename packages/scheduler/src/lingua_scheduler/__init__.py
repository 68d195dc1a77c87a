"""Lingua scheduler: sessions, node registry, capability-aware dispatch, ordering, failover,
rooms and pairing.

`SchedulerCore` is the pure core (events in, actions out: `Send`, `SendLatest` for partials
a slow reader may skip, `Close`, `SetAudioTransport`); `SchedulerServer` is its websockets
shell; `SchedulerSettings` the configuration both take. `Randomness` is where the core draws
ids, tokens, codes and node choices from (seeded: a run replays from its events);
`CoreError` is the core's one exception type, carrying an `ErrorCode`. Test doubles live in
`lingua_scheduler.testing`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lingua_protocol import lazy_exports

from ._core.actions import (
    CLOSE_GOING_AWAY,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    Action,
    Close,
    Send,
    SendLatest,
    SetAudioTransport,
)
from ._core.credentials import CredentialStore, MemoryCredentialStore
from ._core.engine import SchedulerCore
from ._core.errors import CoreError
from ._core.randomness import Randomness
from ._core.tables import Observer
from ._server import SchedulerServer
from ._settings import SchedulerSettings
from ._sqlite_store import SqliteCredentialStore

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_NORMAL",
    "CLOSE_POLICY",
    "CLOSE_TOO_BIG",
    "Action",
    "Close",
    "CoreError",
    "CredentialStore",
    "MemoryCredentialStore",
    "Observer",
    "Randomness",
    "SchedulerCore",
    "SchedulerServer",
    "SchedulerSettings",
    "Send",
    "SendLatest",
    "SetAudioTransport",
    "SqliteCredentialStore",
    "event_loop_factory",
]

# Public names, imported on first use: importing the package stays cheap (the
# engines behind some of them load large libraries).
_LAZY: dict[str, str] = {
    "event_loop_factory": ".__main__",
}

if TYPE_CHECKING:
    from .__main__ import event_loop_factory


__getattr__ = lazy_exports(__name__, _LAZY)
