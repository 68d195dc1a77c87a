"""Meeting rooms: members with a preferred language; one job per distinct target language."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from lingua_protocol import ErrorCode

from .errors import CoreError


@dataclass(slots=True)
class Member:
    session_id: str
    display_name: str | None
    preferred_lang: str


@dataclass(slots=True)
class Room:
    code: str
    created_at: float
    last_activity: float
    members: dict[str, Member] = field(default_factory=dict)

    def languages_for(self, speaker: str, own_target: str) -> list[str]:
        """Distinct preferred languages of the other members plus the speaker's own target
        (the speaker's result is always in the language the speaker asked for), in a stable
        order: one job per language."""
        langs = {m.preferred_lang for sid, m in self.members.items() if sid != speaker}
        return sorted(langs | {own_target})

    def members_with(self, lang: str, exclude: str | None = None) -> list[str]:
        return [
            sid for sid, m in self.members.items() if m.preferred_lang == lang and sid != exclude
        ]


@dataclass(slots=True)
class RoomManager:
    max_members: int = 16
    idle_timeout_s: float = 1800.0
    rooms: dict[str, Room] = field(default_factory=dict)
    by_session: dict[str, str] = field(default_factory=dict)
    randbelow: Callable[[int], int] = secrets.randbelow
    """Where room codes come from (`secrets` by default; a test or replay injects its own)."""

    def create(self, member: Member, now: float) -> Room:
        if member.session_id in self.by_session:
            raise _refused(ErrorCode.ALREADY_IN_ROOM)
        while True:
            code = f"{self.randbelow(1_000_000):06d}"
            if code not in self.rooms:
                break
        room = Room(code=code, created_at=now, last_activity=now)
        self.rooms[code] = room
        self._add(room, member)
        return room

    def join(self, code: str, member: Member, now: float) -> Room:
        if not (len(code) == 6 and code.isdigit()):
            raise _refused(ErrorCode.INVALID_ROOM_CODE)
        room = self.rooms.get(code)
        if room is None:
            raise _refused(ErrorCode.ROOM_NOT_FOUND)
        if member.session_id in self.by_session:
            raise _refused(ErrorCode.ALREADY_IN_ROOM)
        if len(room.members) >= self.max_members:
            raise _refused(ErrorCode.ROOM_FULL)
        self._add(room, member)
        room.last_activity = now
        return room

    def leave(self, session_id: str) -> Room | None:
        """Remove the member; returns its room (deleted when empty) or None."""
        code = self.by_session.pop(session_id, None)
        if code is None:
            return None
        room = self.rooms[code]
        room.members.pop(session_id, None)
        if not room.members:
            del self.rooms[code]
        return room

    def room_of(self, session_id: str) -> Room | None:
        code = self.by_session.get(session_id)
        return self.rooms.get(code) if code else None

    def expire(self, now: float) -> list[Room]:
        gone = [r for r in self.rooms.values() if now - r.last_activity >= self.idle_timeout_s]
        for room in gone:
            for sid in room.members:
                self.by_session.pop(sid, None)
            del self.rooms[room.code]
        return gone

    def _add(self, room: Room, member: Member) -> None:
        room.members[member.session_id] = member
        self.by_session[member.session_id] = room.code


def _refused(code: ErrorCode) -> CoreError:
    """A room request refused: the code's meaning, naming `room_code` as what to fix."""
    return CoreError(code, field="room_code")
