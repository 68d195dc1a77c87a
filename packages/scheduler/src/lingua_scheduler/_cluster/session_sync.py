"""Sessions and rooms in a cluster: each session's state in Redis under its resume token
(`shared_sessions.py`), rebuilt by whichever instance its client reaches; rooms kept by the
instance that created them, with members on other instances handed over and relayed
(`rooms.py`). One of the parts `instance.Cluster` is made of.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson
from lingua_protocol import (
    Message,
    ProtocolError,
    RoomCreate,
    RoomJoin,
    SessionInit,
    parse_client_message,
    parse_server_message,
)
from redis.asyncio.client import Pipeline

from .._core.actions import Action
from .._core.sessions import Session, SessionState
from .._settings import SchedulerSettings
from .link import Op, RedisLink
from .relay import Relay
from .rooms import client_conn, handover, taken_over
from .shared_sessions import DELETE_IF_HOME, decode, encode
from .stores import PREFIX

if TYPE_CHECKING:
    from .._core.engine import SchedulerCore

log = logging.getLogger("lingua.scheduler.cluster")


class SessionSync:
    def __init__(
        self,
        settings: SchedulerSettings,
        link: RedisLink,
        relay: Relay,
        instance: str,
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.link = link
        self.relay = relay
        self.instance = instance
        self.clock = clock
        self._core: SchedulerCore | None = None
        self._apply: Callable[[list[Action]], None] = lambda _actions: None
        self._send_local: Callable[[str, Message], bool] = lambda _conn, _message: False
        self._close_local: Callable[[str, int, str], None] = lambda _conn, _code, _why: None
        self._home_tokens: set[str] = set()  # resume tokens of the sessions homed here
        self._home_rooms: set[str] = set()  # codes of the rooms created here
        self._client_homes: dict[str, str] = {}  # relayed connection -> the home instance

    def attach(
        self,
        core: SchedulerCore,
        apply: Callable[[list[Action]], None],
        send_local: Callable[[str, Message], bool],
        close_local: Callable[[str, int, str], None],
    ) -> None:
        self._core = core
        self._apply = apply
        self._send_local = send_local
        self._close_local = close_local
        core.on_hold(self.held)

    def relayed_clients(self) -> int:
        return len(self._client_homes)

    async def find(self, token: str, last_received: int | None, now: float) -> None:
        """Before a resume: a session this instance does not hold (or held, but another
        instance took it over since) is rebuilt here from its shared state."""
        assert self._core is not None
        key, held_key = self._session_key(token), self._held_key(token)

        def get(pipe: Pipeline) -> int:
            pipe.get(key)
            pipe.lrange(held_key, 0, -1)
            return 2

        raw, held_raw = await self.link.call(get)
        local = self._core.sessions.for_token(token)
        if not isinstance(raw, bytes):
            return  # unknown here and there (or Redis lost it): the core decides alone
        try:
            state, home = decode(token, raw)
        except ValueError as exc:
            log.warning("session state for a resume does not parse: %s", exc)
            return
        if local is not None:
            if home == self.instance:
                return
            self._apply(self._core.drop_session(local.session_id))  # moved away and back
        held = []
        for item in held_raw if isinstance(held_raw, list) else []:
            try:
                held.append(parse_server_message(item, verify_audio=False))
            except ProtocolError as exc:
                log.warning("a held result for a resume does not parse: %s", exc)
        self._core.adopt_session(state, last_received, now, held)

    def after(self, conn_id: str, message: Message) -> None:
        """After the core handled `message`: a session opened or resumed here is written to
        Redis with this instance as its home, and so is a room created here."""
        assert self._core is not None
        if not isinstance(message, SessionInit | RoomCreate):
            return
        session = self._core.sessions.for_conn(conn_id)
        if session is None:
            return
        if isinstance(message, SessionInit):
            self._write_session(SessionState.of(session))
            if message.resume_token:  # what was held for it went out on this resume
                self._forget_held(session.resume_token)
            return
        code = self._core.rooms.by_session.get(session.session_id)
        if code is not None:
            self._write_room(code)

    def _held_key(self, token: str) -> str:
        return f"{PREFIX}held:{token}"

    def held(self, session: Session, message: Message) -> None:
        """The core held `message` for a disconnected session: keep a copy in Redis, so that
        another instance resuming it (this one died) delivers it instead of computing it
        again. As bounded as the core's hold (`session_hold_bytes`), and kept for
        `resume_grace_s`: after that the session is gone anyway."""
        key = self._held_key(session.resume_token)
        body = message.to_json_bytes()
        ttl = int(self.settings.resume_grace_s * 1000) + 1000

        def add(pipe: Pipeline) -> int:
            pipe.rpush(key, body)
            pipe.pexpire(key, ttl)
            return 2

        self.link.submit(Op(add))

    def _forget_held(self, token: str) -> None:
        key = self._held_key(token)

        def add(pipe: Pipeline) -> int:
            pipe.delete(key)
            return 1

        self.link.submit(Op(add))

    def _room_key(self, code: str) -> str:
        return f"{PREFIX}room:{code}"

    def _write_room(self, code: str) -> None:
        key, ttl = self._room_key(code), int(self.settings.room_idle_timeout_s * 1000)
        home = self.instance.encode()

        def add(pipe: Pipeline) -> int:
            pipe.set(key, home, px=ttl, nx=True)
            return 1

        self.link.submit(Op(add))
        self._home_rooms.add(code)

    async def join_elsewhere(self, conn_id: str, message: RoomJoin) -> bool:
        """A join of a room homed on another instance: hand this client's session over to
        it and relay the connection from now on (`cluster/rooms.py`)."""
        assert self._core is not None
        key = self._room_key(message.room_code)

        def get(pipe: Pipeline) -> int:
            pipe.get(key)
            return 1

        (raw,) = await self.link.call(get)
        home = raw.decode() if isinstance(raw, bytes) else None
        session = self._core.sessions.for_conn(conn_id)
        if home is None or home == self.instance or session is None:
            return False  # a room here, or none at all: the core decides
        seq = session.sequencer
        last = None if seq.next_index is None else seq.next_index - 1
        state = SessionState.of(session)
        self._apply(self._core.drop_session(session.session_id))
        self._client_homes[conn_id] = home
        self.relay.send(home, "client_open", conn_id, handover(state, last))
        self.relay.send(home, "client", conn_id, message.to_json_bytes())
        self._write_session_home(state, home)
        log.info(
            "session=%s handed to instance %s for room %s",
            state.session_id,
            home,
            message.room_code,
        )
        return True

    def _write_session_home(self, state: SessionState, home: str) -> None:
        key, body, ttl = (
            self._session_key(state.resume_token),
            encode(state, home),
            self._session_ttl_ms(),
        )

        def add(pipe: Pipeline) -> int:
            pipe.set(key, body, px=ttl)
            return 1

        self.link.submit(Op(add))

    def relays_client(self, conn_id: str, message: Message) -> bool:
        """A message from a client whose session another instance holds: sent there (one
        dict lookup for every other client)."""
        home = self._client_homes.get(conn_id)
        if home is None:
            return False
        self.relay.send(home, "client", conn_id, message.to_json_bytes())
        return True

    def client_gone(self, conn_id: str) -> None:
        home = self._client_homes.pop(conn_id, None)
        if home is not None:
            self.relay.send(home, "client_gone", conn_id, b"")

    def _session_key(self, token: str) -> str:
        return f"{PREFIX}session:{token}"

    def _session_ttl_ms(self) -> int:
        s = self.settings
        return int((s.session_idle_timeout_s + s.resume_grace_s) * 1000)

    def _write_session(self, state: SessionState) -> None:
        key, body, ttl = (
            self._session_key(state.resume_token),
            encode(state, self.instance),
            self._session_ttl_ms(),
        )

        def add(pipe: Pipeline) -> int:
            pipe.set(key, body, px=ttl)
            return 1

        self.link.submit(Op(add))
        self._home_tokens.add(state.resume_token)

    def refresh(self) -> None:
        """Keep the state of this instance's sessions alive; delete that of sessions that
        ended here (unless another instance is their home by now)."""
        assert self._core is not None
        live = {s.resume_token for s in self._core.sessions.values()}
        gone = self._home_tokens - live
        self._home_tokens = live
        ttl = self._session_ttl_ms()
        me = self.instance

        def add(pipe: Pipeline) -> int:
            for token in live:
                pipe.pexpire(self._session_key(token), ttl)
            for token in gone:
                pipe.eval(DELETE_IF_HOME, 1, self._session_key(token), me)
            return len(live) + len(gone)

        if live or gone:
            self.link.submit(Op(add))
        rooms = set(self._core.rooms.rooms) & self._home_rooms
        self._home_rooms = rooms
        room_ttl = int(self.settings.room_idle_timeout_s * 1000)

        def keep_rooms(pipe: Pipeline) -> int:
            for code in rooms:
                pipe.pexpire(self._room_key(code), room_ttl)
            return len(rooms)

        if rooms:
            self.link.submit(Op(keep_rooms))

    def from_inbox(self, kind: str, sender: str, conn_id: str, payload: bytes) -> None:
        """The home side and the relaying side of a client another instance relays
        (`node_id` in the inbox entry carries the relaying instance's connection id)."""
        assert self._core is not None
        now = self.clock()
        conn = client_conn(sender, conn_id)
        if kind == "client_open":
            state, last = taken_over(payload)
            self._core.adopt_session(state, last, now)
            resume = SessionInit(
                src_lang=state.src_lang,
                tgt_lang=state.tgt_lang,
                resume_token=state.resume_token,
                last_received_index=last,
            )
            self._core.client_message(conn, resume, now)  # its ack: the client has one already
            self._write_session(state)
        elif kind == "client":
            message = parse_client_message(payload, verify_audio=False)
            self._apply(self._core.client_message(conn, message, now))
            self.after(conn, message)
        elif kind == "client_gone":
            self._apply(self._core.client_disconnected(conn, now))
        elif kind == "to_client":
            self._send_local(conn_id, parse_server_message(payload, verify_audio=False))
        elif kind == "close_client":
            entry = orjson.loads(payload)
            self._close_local(conn_id, int(entry["code"]), str(entry["reason"]))
