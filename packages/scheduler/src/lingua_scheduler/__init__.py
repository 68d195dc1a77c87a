"""Lingua scheduler: sessions, node registry, capability-aware dispatch, ordering, failover,
rooms and pairing.

`SchedulerCore` is the pure core (events in, actions out: `Send`, `SendLatest` for partials
a slow reader may skip, `Close`, `SetAudioTransport`); `SchedulerServer` is its websockets
shell; `SchedulerSettings` the configuration both take. `Randomness` is where the core draws
ids, tokens, codes and node choices from (seeded: a run replays from its events);
`CoreError` is the core's one exception type, carrying an `ErrorCode`. Test doubles live in
`lingua_scheduler.testing`.
"""

from .core.actions import (
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
from .core.credentials import CredentialStore, MemoryCredentialStore
from .core.engine import SchedulerCore
from .core.errors import CoreError
from .core.randomness import Randomness
from .core.tables import Observer
from .server import SchedulerServer
from .settings import SchedulerSettings
from .sqlite_store import SqliteCredentialStore

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
]
