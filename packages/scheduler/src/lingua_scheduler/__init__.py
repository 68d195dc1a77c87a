"""Lingua scheduler: sessions, node registry, capability-aware dispatch, ordering, failover,
rooms and pairing. `SchedulerCore` is the pure core; `SchedulerServer` its websockets shell."""

from .core.engine import SchedulerCore
from .server import SchedulerServer
from .settings import SchedulerSettings

__all__ = ["SchedulerCore", "SchedulerServer", "SchedulerSettings"]
