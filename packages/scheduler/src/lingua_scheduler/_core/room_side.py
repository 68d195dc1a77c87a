"""Rooms: create, join, leave, member lists."""

from __future__ import annotations

from lingua_protocol import ErrorCode, Message, RoomCreate, RoomCreateAck, RoomJoin

from .actions import Action, Send
from .delivery import Delivery
from .errors import CoreError
from .rooms import Member
from .sessions import Session
from .tables import CoreTables


class RoomSide:
    """Handles a session's room requests; refusals raise `CoreError` (naming `room_code`)."""

    def __init__(self, tables: CoreTables, delivery: Delivery) -> None:
        self.rooms = tables.rooms
        self.trust = tables.trust
        self.delivery = delivery

    def room_message(self, session: Session, m: Message, now: float) -> list[Action]:
        conn = session.conn_id
        assert conn is not None
        if isinstance(m, RoomCreate):
            member = Member(
                session.session_id, m.display_name, m.preferred_lang or session.tgt_lang
            )
            room = self.rooms.create(member, now)
            ack = RoomCreateAck(room_code=room.code, session_id=session.session_id)
            return [Send(conn, ack), *self.delivery.members(room)]
        if isinstance(m, RoomJoin):
            return self._join_room(session, m, now)
        return self.delivery.leave_room(session)

    def _join_room(self, session: Session, m: RoomJoin, now: float) -> list[Action]:
        """Join by code; wrong codes count against the client's address and everyone's total
        (`trust.GuessGuard`), so codes cannot be swept by reconnecting or spreading out."""
        address = self.trust.address_of(session.conn_id or "")
        if not self.trust.guesses.may_guess(address, now):
            raise CoreError(ErrorCode.RATE_LIMITED, field="room_code")
        member = Member(session.session_id, m.display_name, m.preferred_lang or session.tgt_lang)
        try:
            room = self.rooms.join(m.room_code, member, now)
        except CoreError as exc:
            if exc.code in (ErrorCode.ROOM_NOT_FOUND, ErrorCode.INVALID_ROOM_CODE):
                self.trust.guesses.wrong(address, now)
            raise
        return self.delivery.members(room)
