"""Test doubles and drivers for the scheduler, importable by every test suite (no `sys.path`
tricks): a core driver with a fake clock (`Harness`), a real server on a free port
(`running_scheduler`), and scripted peers that speak the protocol over real WebSockets
(`ScriptedNode`, `ScriptedClient`). For unit, integration and load tests only; a user never
runs these, and end-to-end tests use real nodes and clients instead."""

from .core_driver import (
    PCM_1S,
    REFERENCE_REGISTER,
    Harness,
    node_register,
    streaming_node_register,
)
from .running import Running, running_instances, running_scheduler
from .scripted import ScriptedClient, ScriptedNode

__all__ = [
    "PCM_1S",
    "REFERENCE_REGISTER",
    "Harness",
    "Running",
    "ScriptedClient",
    "ScriptedNode",
    "node_register",
    "running_instances",
    "running_scheduler",
    "streaming_node_register",
]
