"""The tables the scheduler core is composed of, built once from the settings.

Each table owns its own invariants (the session table its three indexes, the job table its
links to sessions and nodes and the queue, the registry its nodes and their status, rooms
their members, pairing its codes, trust its limits). The handlers (`node_side`, `job_flow`,
`client_side`, `room_side`, `delivery`, `timers`) are classes that receive the tables they
use and hold no state of their own. `CoreTables` only builds and hands out the tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Literal, Protocol

from .._settings import SchedulerSettings
from .credentials import CredentialStore
from .deadlines import Deadlines
from .job_table import JobTable
from .jobs import JobQueue
from .pairing import PairingService
from .randomness import Randomness
from .registry import NodeRegistry, Thresholds
from .rooms import RoomManager
from .selection import CapableIndex
from .sessions import SessionTable
from .trust import TrustState

JobOutcome = Literal["success", "failed"]


class Observer(Protocol):
    """Receives metrics from the core (the shell exports them to Prometheus)."""

    def job_outcome(self, outcome: JobOutcome) -> None: ...
    def dispatch_latency(self, seconds: float) -> None: ...


class NullObserver:
    def job_outcome(self, outcome: JobOutcome) -> None:
        pass

    def dispatch_latency(self, seconds: float) -> None:
        pass


class Stats:
    """Counters for the operator view, and the observer that feeds /metrics."""

    __slots__ = ("counters", "observer")

    def __init__(self, observer: Observer) -> None:
        self.counters: dict[str, int] = {}
        self.observer = observer

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n


@dataclass(slots=True)
class CoreTables:
    config: SchedulerSettings
    random: Randomness
    stats: Stats
    sessions: SessionTable
    registry: NodeRegistry
    capable: CapableIndex
    jobs: JobTable
    rooms: RoomManager
    pairing: PairingService
    trust: TrustState
    deadlines: Deadlines

    @classmethod
    def build(
        cls,
        config: SchedulerSettings,
        random: Randomness,
        observer: Observer,
        credentials: CredentialStore | None,
    ) -> CoreTables:
        sessions = SessionTable()
        registry = NodeRegistry(
            Thresholds(
                config.degraded_cpu_percent,
                config.degraded_mem_percent,
                config.degraded_gpu_mem_percent,
            )
        )
        queue = JobQueue(config.max_queue, config.max_queue_bytes)
        deadlines = Deadlines()
        deadlines.push(float("-inf"), ("slow", ""))
        return cls(
            config=config,
            random=random,
            stats=Stats(observer),
            sessions=sessions,
            registry=registry,
            capable=CapableIndex(registry),
            jobs=JobTable(sessions, registry, queue, random.token_hex(4)),
            rooms=RoomManager(
                config.room_max_members, config.room_idle_timeout_s, randbelow=random.below
            ),
            pairing=PairingService(config.pairing_code_ttl_s, randbelow=random.below),
            trust=TrustState(config, credentials, partial(random.token, 32)),
            deadlines=deadlines,
        )
