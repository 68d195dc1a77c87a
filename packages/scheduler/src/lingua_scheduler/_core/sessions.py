"""Client sessions and the table that owns them with their connection and token indexes.

`SessionTable` is the only place that changes which connection or resume token leads to which
session, so the three indexes cannot disagree: a session is reachable from its connection iff
`session.conn_id` names that connection, and from its token while it exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lingua_protocol import FeatureFlags, Message, PipelineConfig

from .ordering import ResultSequencer

if TYPE_CHECKING:
    from .streams import Stream


@dataclass(slots=True)
class Session:
    session_id: str
    resume_token: str
    conn_id: str | None
    src_lang: str
    tgt_lang: str
    dialect: str | None
    features: FeatureFlags | None
    pipeline: PipelineConfig
    binary_audio: bool
    sequencer: ResultSequencer
    created_at: float
    last_activity: float
    paired_node_id: str | None = None
    sticky_node_id: str | None = None
    disconnected_at: float | None = None
    closing: bool = False
    outbox: list[Message] = field(default_factory=list)
    outbox_bytes: int = 0
    job_ids: set[str] = field(default_factory=set)
    gap_armed: float | None = None
    tokens: float = 0.0
    tokens_at: float = 0.0
    display_name: str | None = None
    streaming: bool | None = None
    """None: the session did not ask for streaming; False: asked, refused; True: granted."""
    partial_interval_ms: int | None = None
    streams: dict[int, Stream] = field(default_factory=dict)
    """Streamed utterances whose audio the scheduler still keeps (open, or closed and waiting
    for their final result), by index; bounded by the flow-control window."""


def take_token(session: Session, now: float, rate: float, burst: float) -> bool:
    """Take one utterance from the session's token bucket (`rate` per second, `burst` at
    most); False when it is empty."""
    session.tokens = min(burst, session.tokens + (now - session.tokens_at) * rate)
    session.tokens_at = now
    if session.tokens < 1.0:
        return False
    session.tokens -= 1.0
    return True


@dataclass(frozen=True, slots=True)
class SessionState:
    """What another scheduler instance needs to resume a session: who it is and what it asked
    for (results held for it travel apart; the client sends again what has no answer)."""

    session_id: str
    resume_token: str
    src_lang: str
    tgt_lang: str
    dialect: str | None
    features: FeatureFlags | None
    pipeline: PipelineConfig
    binary_audio: bool
    paired_node_id: str | None
    display_name: str | None
    streaming: bool | None = None
    """What the session's streaming negotiation gave (see `Session.streaming`)."""
    partial_interval_ms: int | None = None

    @classmethod
    def of(cls, session: Session) -> SessionState:
        return cls(
            session.session_id,
            session.resume_token,
            session.src_lang,
            session.tgt_lang,
            session.dialect,
            session.features,
            session.pipeline,
            session.binary_audio,
            session.paired_node_id,
            session.display_name,
            session.streaming,
            session.partial_interval_ms,
        )


class SessionTable:
    def __init__(self) -> None:
        self._by_id: dict[str, Session] = {}
        self._by_conn: dict[str, Session] = {}
        self._by_token: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._by_id

    def __getitem__(self, session_id: str) -> Session:
        return self._by_id[session_id]

    def get(self, session_id: str) -> Session | None:
        return self._by_id.get(session_id)

    def values(self) -> Iterator[Session]:
        """Every session (a snapshot: the caller may drop sessions while iterating)."""
        return iter(list(self._by_id.values()))

    def for_conn(self, conn_id: str) -> Session | None:
        return self._by_conn.get(conn_id)

    def for_token(self, token: str) -> Session | None:
        return self._by_token.get(token)

    def conns(self) -> dict[str, str]:
        """Connection -> session id, for views and checks."""
        return {conn: s.session_id for conn, s in self._by_conn.items()}

    def add(self, session: Session) -> None:
        self._by_id[session.session_id] = session
        self._by_token[session.resume_token] = session
        if session.conn_id is not None:
            self._by_conn[session.conn_id] = session

    def attach(self, session: Session, conn_id: str) -> str | None:
        """Bind `session` to `conn_id`; returns the connection it leaves, if another."""
        old = session.conn_id
        if old is not None and old != conn_id:
            self._by_conn.pop(old, None)
        session.conn_id = conn_id
        session.disconnected_at = None
        self._by_conn[conn_id] = session
        return old if old != conn_id else None

    def detach(self, conn_id: str, now: float | None) -> Session | None:
        """The connection is gone: its session (if any) stays, without a connection."""
        session = self._by_conn.pop(conn_id, None)
        if session is None or session.conn_id != conn_id:
            return None
        session.conn_id = None
        session.disconnected_at = now
        return session

    def drop(self, session: Session) -> None:
        self._by_id.pop(session.session_id, None)
        self._by_token.pop(session.resume_token, None)
        if session.conn_id is not None and self._by_conn.get(session.conn_id) is session:
            del self._by_conn[session.conn_id]
