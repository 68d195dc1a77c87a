"""The cluster's node view: each instance publishes the nodes it holds; every instance shows
the others' nodes to its core as nodes behind a link (`remote:<instance>:<node_id>`).

Every `VIEW_INTERVAL_S` an instance writes its nodes (register, draining, resource usage,
jobs in flight) into one hash that expires after `VIEW_TTL_S`, and reads the others'. So a
node another instance holds is visible within one interval of registering there, its load and
status are at most one interval old, and a node that left (or an instance that died) is gone
from every view within `VIEW_TTL_S` plus one interval; its jobs then move on, as for a node
that disconnected. Pure functions here; the loop is in `instance.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from lingua_protocol import NodeRegister, ProtocolError, ResourceUsage, parse_node_message

from .._core.registry import NodeRecord

VIEW_INTERVAL_S = 1.0
"""How often an instance publishes its nodes and reads the others' (the staleness bound on
load and status)."""
VIEW_TTL_S = 3.0
"""An instance's published nodes expire this long after its last publication."""
REMOTE = "remote:"


def remote_conn(instance: str, node_id: str) -> str:
    """The connection id a core uses for a node another instance holds."""
    return f"{REMOTE}{instance}:{node_id}"


def parse_remote(conn_id: str) -> tuple[str, str] | None:
    """(instance, node id) of a remote connection id, or None for a local connection."""
    if not conn_id.startswith(REMOTE):
        return None
    instance, _, node_id = conn_id[len(REMOTE) :].partition(":")
    return instance, node_id


def published(node: NodeRecord) -> bytes:
    """One node as this instance publishes it."""
    return orjson.dumps(
        {
            "register": node.register.to_json(),
            "draining": node.draining,
            "usage": node.usage.model_dump(mode="json", exclude_none=True) if node.usage else None,
            "in_flight": len(node.in_flight),
        }
    )


@dataclass(frozen=True, slots=True)
class RemoteNode:
    register: NodeRegister
    usage: ResourceUsage | None
    draining: bool
    in_flight: int


class ViewReader:
    """Parses published nodes, keeping the parsed register while its text is unchanged (so a
    refresh costs a comparison, and the core sees the same object and redoes nothing)."""

    def __init__(self) -> None:
        self._registers: dict[str, tuple[str, NodeRegister]] = {}

    def read(self, key: str, raw: bytes) -> RemoteNode | None:
        """`key` identifies the entry (instance and node); None for an entry that does not
        parse (logged by the caller)."""
        try:
            entry: dict[str, Any] = orjson.loads(raw)
            text = str(entry["register"])
            cached = self._registers.get(key)
            if cached is not None and cached[0] == text:
                register = cached[1]
            else:
                message = parse_node_message(text, verify_audio=False)
                if not isinstance(message, NodeRegister) or not message.node_id:
                    return None
                register = message
                self._registers[key] = (text, register)
            usage = entry.get("usage")
            return RemoteNode(
                register,
                ResourceUsage.model_validate(usage) if usage else None,
                bool(entry.get("draining")),
                int(entry.get("in_flight", 0)),
            )
        except (ValueError, KeyError, TypeError, ProtocolError):
            return None

    def forget(self, key: str) -> None:
        self._registers.pop(key, None)

    def keep_only(self, keys: set[str]) -> None:
        """Forget every parsed register not published any more (bounded by what is)."""
        for key in [k for k in self._registers if k not in keys]:
            del self._registers[key]
