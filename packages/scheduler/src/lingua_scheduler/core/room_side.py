"""Rooms: create, join, leave, member lists."""

from __future__ import annotations

from lingua_protocol import (
    ErrorCode,
    Message,
    RoomCreate,
    RoomCreateAck,
    RoomJoin,
    RoomMember,
    RoomMembers,
    error_message,
)

from .actions import Action, Send
from .rooms import Member, Room, RoomError
from .state import CoreState, Session


class RoomSide(CoreState):
    # ------------------------------------------------------------------ rooms

    def _room_message(self, session: Session, m: Message, now: float) -> list[Action]:
        conn = session.conn_id
        assert conn is not None
        try:
            if isinstance(m, RoomCreate):
                member = Member(
                    session.session_id, m.display_name, m.preferred_lang or session.tgt_lang
                )
                room = self.rooms.create(member, now)
                ack = RoomCreateAck(room_code=room.code, session_id=session.session_id)
                return [Send(conn, ack), *self._members(room)]
            if isinstance(m, RoomJoin):
                return self._join_room(session, m, now)
            return self._leave_room(session)
        except RoomError as exc:
            return [Send(conn, error_message(ErrorCode(exc.code), field="room_code"))]

    def _join_room(self, session: Session, m: RoomJoin, now: float) -> list[Action]:
        """Join by code; wrong codes count against the client's address and everyone's total
        (`trust.GuessGuard`), so codes cannot be swept by reconnecting or spreading out."""
        address = self.trust.address_of(session.conn_id or "")
        if not self.trust.guesses.may_guess(address, now):
            raise RoomError(ErrorCode.RATE_LIMITED.value)
        member = Member(session.session_id, m.display_name, m.preferred_lang or session.tgt_lang)
        try:
            room = self.rooms.join(m.room_code, member, now)
        except RoomError as exc:
            if exc.code in (ErrorCode.ROOM_NOT_FOUND.value, ErrorCode.INVALID_ROOM_CODE.value):
                self.trust.guesses.wrong(address, now)
            raise
        return self._members(room)

    def _members(self, room: Room) -> list[Action]:
        members = [
            RoomMember(
                session_id=m.session_id,
                display_name=m.display_name,
                preferred_lang=m.preferred_lang,
            )
            for m in room.members.values()
        ]
        actions: list[Action] = []
        for sid in room.members:
            actions += self._send_to_session(sid, RoomMembers(room_code=room.code, members=members))
        return actions

    def _leave_room(self, session: Session) -> list[Action]:
        room = self.rooms.leave(session.session_id)
        if room is None or not room.members:
            return []
        return self._members(room)
