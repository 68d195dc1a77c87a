"""Client sessions: init and resume, utterances, rate limits, disconnects."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from lingua_protocol import (
    PROTOCOL_VERSION,
    AudioChunk,
    ClientHeartbeat,
    ErrorCode,
    Message,
    PipelineConfig,
    RoomCreate,
    RoomJoin,
    RoomLeave,
    ServerHeartbeat,
    SessionClose,
    SessionInit,
    SessionInitAck,
    Utterance,
)

from .actions import CLOSE_POLICY, Action, Close, Send, SetAudioTransport
from .admission import check_flow, check_window
from .audio_probe import duration_s
from .budget import message_bytes
from .delivery import Delivery
from .errors import CoreError
from .job_build import new_job
from .job_flow import JobFlow
from .jobs import log_job
from .ordering import Acceptance, ResultSequencer
from .room_side import RoomSide
from .sessions import Session, SessionState, take_token
from .stream_side import StreamSide
from .streams import negotiate
from .tables import CoreTables
from .versions import version_ok, version_refusal

log = logging.getLogger("lingua.scheduler")


class ClientSide:
    """Handles every message from a client connection; receives the tables it works on."""

    def __init__(
        self,
        tables: CoreTables,
        flow: JobFlow,
        delivery: Delivery,
        rooms: RoomSide,
        streams: StreamSide,
    ) -> None:
        self.s = tables.config
        self.random = tables.random
        self.stats = tables.stats
        self.sessions = tables.sessions
        self.jobs = tables.jobs
        self.rooms = tables.rooms
        self.pairing = tables.pairing
        self.trust = tables.trust
        self.flow = flow
        self.delivery = delivery
        self.room_side = rooms
        self.stream_side = streams

    def client_message(self, conn_id: str, message: Message, now: float) -> list[Action]:
        if isinstance(message, SessionInit):
            return self._session_init(conn_id, message, now)
        session = self.sessions.for_conn(conn_id)
        index = getattr(message, "utterance_index", None)
        if session is None:
            raise CoreError(
                ErrorCode.INVALID_SESSION, "send session_init first", utterance_index=index
            )
        claimed = getattr(message, "session_id", None)
        if claimed is not None and claimed != session.session_id:
            raise CoreError(
                ErrorCode.INVALID_SESSION,
                "session_id does not match this connection",
                field="session_id",
                utterance_index=index,
            )
        session.last_activity = now
        if isinstance(message, Utterance):
            return self._utterance(session, message, now)
        if isinstance(message, ClientHeartbeat):
            return [
                Send(
                    conn_id,
                    ServerHeartbeat(session_id=session.session_id, timestamp=message.timestamp),
                )
            ]
        if isinstance(message, SessionClose):
            session.closing = True
            return self.delivery.deliver(session, [])
        if isinstance(message, AudioChunk) and session.streaming:
            return self.stream_side.chunk(session, message, now)
        if isinstance(message, RoomCreate | RoomJoin | RoomLeave):
            return self.room_side.room_message(session, message, now)
        raise CoreError(
            ErrorCode.UNSUPPORTED_FEATURE,
            f"{message.type} is not supported by this scheduler",
            field="type",
            utterance_index=index,
        )

    def _session_init(self, conn_id: str, m: SessionInit, now: float) -> list[Action]:
        if not version_ok(m.protocol_version):
            return version_refusal(conn_id, m.protocol_version)
        if self.sessions.for_conn(conn_id) is not None:
            raise CoreError(ErrorCode.INVALID_SESSION, "this connection already has a session")
        if m.resume_token:
            session = self.sessions.for_token(m.resume_token)
            if session is not None and not session.closing:
                return self._resume(conn_id, session, m.last_received_index, now)
            raise CoreError(
                ErrorCode.INVALID_SESSION,
                "resume token unknown or expired; start a new session",
                field="resume_token",
            )
        paired = None
        if m.pairing_code:
            address = self.trust.address_of(conn_id)
            if not self.trust.guesses.may_guess(address, now):
                raise CoreError(
                    ErrorCode.RATE_LIMITED,
                    "too many wrong codes from this address; wait a minute",
                    field="pairing_code",
                )
            paired = self.pairing.redeem(m.pairing_code, now, self.trust.credentials.digest)
            if paired is None:
                self.trust.guesses.wrong(address, now)
                raise CoreError(
                    ErrorCode.INVALID_PAIRING_CODE,
                    "Pairing code not found or expired",
                    field="pairing_code",
                )
        session = Session(
            session_id=f"sess-{self.random.token(12)}",
            resume_token=self.random.token(24),
            conn_id=conn_id,
            src_lang=m.src_lang,
            tgt_lang=m.tgt_lang,
            dialect=m.dialect,
            features=m.features,
            pipeline=m.pipeline or PipelineConfig(),
            binary_audio=bool(m.binary_audio),
            sequencer=ResultSequencer(
                self.s.result_gap_timeout_s,
                replay_bytes=self.s.replay_buffer_bytes,
                hold_bytes=self.s.session_hold_bytes,
            ),
            created_at=now,
            last_activity=now,
            paired_node_id=paired,
            tokens=float(self.s.utterance_burst),
            tokens_at=now,
        )
        session.streaming, session.partial_interval_ms = negotiate(self.s, m)
        self.sessions.add(session)
        self.stats.count("sessions_created")
        log.info(
            "session=%s created %s->%s paired=%s",
            session.session_id,
            m.src_lang,
            m.tgt_lang,
            paired,
        )
        ack = self._init_ack(session, "session created")
        return [SetAudioTransport(conn_id, session.binary_audio), Send(conn_id, ack)]

    def adopt_session(
        self,
        state: SessionState,
        last_received: int | None,
        now: float,
        held: Sequence[Message] = (),
    ) -> Session:
        """A session another instance of a cluster held (it died, or the client reconnected
        through another instance), rebuilt from its shared state, disconnected, so that the
        client's `session_init` with its resume token resumes it here. Its next index is the
        one after the client's last received result; the client sends again what it has no
        answer for, and each gets exactly one."""
        session = Session(
            session_id=state.session_id,
            resume_token=state.resume_token,
            conn_id=None,
            src_lang=state.src_lang,
            tgt_lang=state.tgt_lang,
            dialect=state.dialect,
            features=state.features,
            pipeline=state.pipeline,
            binary_audio=state.binary_audio,
            sequencer=ResultSequencer(
                self.s.result_gap_timeout_s,
                replay_bytes=self.s.replay_buffer_bytes,
                hold_bytes=self.s.session_hold_bytes,
                next_index=None if last_received is None else last_received + 1,
            ),
            created_at=now,
            last_activity=now,
            paired_node_id=state.paired_node_id,
            disconnected_at=now,
            tokens=float(self.s.utterance_burst),
            tokens_at=now,
            display_name=state.display_name,
            streaming=state.streaming,
            partial_interval_ms=state.partial_interval_ms,
        )
        floor = -1 if last_received is None else last_received
        for message in held:
            index = getattr(message, "utterance_index", None)
            if isinstance(index, int) and index <= floor:
                continue  # the client has it already
            if isinstance(index, int):
                session.sequencer.restore(index, message)
            session.outbox.append(message)
            session.outbox_bytes += message_bytes(message)
        self.sessions.add(session)
        self.stats.count("sessions_adopted")
        log.info("session=%s adopted from the cluster", session.session_id)
        return session

    def _init_ack(self, session: Session, text: str) -> SessionInitAck:
        """The ack a new or resumed session gets: its ids, transport and flow-control window,
        and, only when the session asked for streaming, what it was granted."""
        streaming: dict[str, Any] = {}
        if session.streaming is not None:
            streaming["streaming"] = session.streaming
            if session.streaming:
                streaming["partial_update_interval_ms"] = session.partial_interval_ms
                streaming["max_stream_ms"] = self.s.max_stream_ms
        return SessionInitAck(
            session_id=session.session_id,
            assigned_node_id=session.paired_node_id,
            message=text,
            protocol_version=PROTOCOL_VERSION,
            resume_token=session.resume_token,
            binary_audio=session.binary_audio,
            max_in_flight_utterances=self.s.max_in_flight_utterances,
            max_in_flight_bytes=self.s.max_in_flight_bytes,
            **streaming,
        )

    def _resume(
        self, conn_id: str, session: Session, last_received: int | None, now: float
    ) -> list[Action]:
        actions: list[Action] = []
        left = self.sessions.attach(session, conn_id)
        if left is not None:
            actions.append(Close(left, CLOSE_POLICY, "session resumed elsewhere"))
        session.last_activity = now
        self.stats.count("sessions_resumed")
        log.info(
            "session=%s resumed, %d buffered message(s)", session.session_id, len(session.outbox)
        )
        seq = session.sequencer
        last = None if seq.next_index is None else seq.next_index - 1
        ack = self._init_ack(session, "session resumed")
        ack.resumed = True  # set, so both are on the wire (a new session's ack has neither)
        ack.last_delivered_index = last
        actions.append(SetAudioTransport(conn_id, session.binary_audio))
        actions.append(Send(conn_id, ack))
        # Messages sent on the old connection may have been lost with it: replay those the
        # client says it lacks, then what was produced while it was away.
        outbox, session.outbox, session.outbox_bytes = session.outbox, [], 0
        queued = {getattr(m, "utterance_index", None) for m in outbox}
        floor = -1 if last_received is None else last_received
        for index, (message, _) in seq.delivered.items():
            if index > floor and index not in queued:
                actions.append(Send(conn_id, message))
        actions += [Send(conn_id, msg) for msg in outbox]
        return actions

    def _utterance(self, session: Session, m: Utterance, now: float) -> list[Action]:
        """Validate everything first (session state, index, flow control, audio, rate), then
        accept the index and create its jobs. A refused utterance is never accepted, so it is
        never a gap and never holds later results back."""
        conn = session.conn_id
        assert conn is not None
        index = m.utterance_index
        seq = session.sequencer
        state = self._check_utterance(session, m)
        if state is Acceptance.IN_PROGRESS:
            return []  # a resend of an utterance already being worked on: its result will come
        if state is Acceptance.DELIVERED:
            old = seq.replay(index)
            if old is not None:
                return [Send(conn, old)]
            raise CoreError(
                ErrorCode.INVALID_MESSAGE,
                f"utterance {index} was already answered",
                field="utterance_index",
                utterance_index=index,
            )
        try:
            duration = duration_s(m.audio, m.audio_format, m.sample_rate)
        except ValueError as exc:
            raise CoreError(
                ErrorCode.AUDIO_DECODE_FAILED,
                f"utterance {index}: {exc}",
                field="audio",
                utterance_index=index,
            ) from exc
        if not take_token(session, now, self.s.utterances_per_s, self.s.utterance_burst):
            raise CoreError(
                ErrorCode.RATE_LIMITED,
                f"more than {self.s.utterances_per_s:g} utterances a second; slow down",
                utterance_index=index,
            )
        seq.accept_new(index, len(m.audio))
        self.stats.count("utterances_accepted")
        try:
            return self._start_jobs(session, m, duration, now)
        except Exception:
            # A bug past validation must still end the accepted index, or it would hold every
            # later result of the session forever.
            log.exception("session=%s utterance %d failed", session.session_id, index)
            return self.delivery.end_in_internal_error(session, index, now)

    def _check_utterance(self, session: Session, m: Utterance) -> Acceptance:
        """What the utterance's index is to the session; `CoreError` for an utterance this
        session may not send now."""
        index = m.utterance_index
        seq = session.sequencer
        if session.closing:
            raise CoreError(ErrorCode.SESSION_CLOSED, "session is closing", utterance_index=index)
        state = seq.classify(index)
        if state is Acceptance.NEW:
            check_window(seq, index, self.s)
            check_flow(seq, index, len(m.audio), self.s, self.stats)
        return state

    def _start_jobs(
        self, session: Session, m: Utterance, duration: float | None, now: float
    ) -> list[Action]:
        index = m.utterance_index
        src = m.src_lang or session.src_lang
        tgt = m.tgt_lang or session.tgt_lang
        pipeline = m.pipeline or session.pipeline
        features = m.features or session.features
        audio = m.audio
        room = self.rooms.room_of(session.session_id)
        if room is not None:
            room.last_activity = now
            langs = room.languages_for(session.session_id, tgt)
            primary_lang = tgt
        else:
            langs, primary_lang = [tgt], tgt
        actions: list[Action] = []
        for lang in langs:
            job = new_job(
                self.jobs.new_id(),
                session,
                index,
                src,
                lang,
                pipeline,
                features,
                m.dialect or session.dialect,
                audio,
                m.audio_format,
                m.sample_rate,
                duration or 10.0,
                room,
                lang == primary_lang,
                now,
            )
            self.jobs.add(job, session)
            log_job(job, "created", now, src=src, tgt=lang)
            actions += self.flow.dispatch(job, now)
        return actions

    def client_disconnected(self, conn_id: str, now: float) -> list[Action]:
        session = self.sessions.detach(conn_id, now)
        if session is None:
            return []
        if session.closing:
            return self.delivery.drop_session(session)
        return []
