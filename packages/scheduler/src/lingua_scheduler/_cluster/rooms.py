"""Rooms across instances: a room lives in the core of the instance where it was created (its
home); a client on another instance that joins it is handed over to the home instance, whose
core then holds its session, and the client's own instance only relays that connection's
messages both ways through the two inboxes.

So a room's fan-out (one job per listener language, results to every member, member lists)
stays the single core's logic. A room code is a key naming its home (`lingua:room:<code>`,
expiring with the room's idle timeout, refreshed by the home). The cost: a remote member's
messages, audio included, cross Redis twice; a member joins a room homed elsewhere best with
nothing in flight (what its session had in flight on its own instance ends there and is sent
again by the client only after a reconnect).
"""

from __future__ import annotations

from typing import Any

import orjson

from .._core.sessions import SessionState
from .shared_sessions import decode, encode

CLIENT = "client:"


def client_conn(instance: str, conn_id: str) -> str:
    """The connection id a home instance's core uses for a client another instance relays."""
    return f"{CLIENT}{instance}:{conn_id}"


def parse_client(conn_id: str) -> tuple[str, str] | None:
    """(relaying instance, its connection id), or None for any other connection."""
    if not conn_id.startswith(CLIENT):
        return None
    instance, _, conn = conn_id[len(CLIENT) :].partition(":")
    return instance, conn


def handover(state: SessionState, last_received: int | None) -> bytes:
    """What a home instance needs to take a relayed client's session over."""
    return orjson.dumps(
        {
            "state": orjson.loads(encode(state, "")),
            "last": last_received,
            "token": state.resume_token,
        }
    )


def taken_over(raw: bytes) -> tuple[SessionState, int | None]:
    entry: dict[str, Any] = orjson.loads(raw)
    state, _ = decode(str(entry["token"]), orjson.dumps(entry["state"]))
    last = entry.get("last")
    return state, None if last is None else int(last)
