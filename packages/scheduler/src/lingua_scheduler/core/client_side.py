"""Client sessions: init and resume, utterances, rate limits, disconnects."""

from __future__ import annotations

import functools
import secrets

from lingua_protocol import (
    PROTOCOL_VERSION,
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
    error_message,
)
from lingua_protocol.audio import message_audio_duration_s

from .actions import Action, Close, Send
from .jobs import Job
from .ordering import Acceptance, ResultSequencer
from .selection import JobNeeds
from .state import CLOSE_POLICY, CoreState, Session, _version_ok, log


@functools.cache
def _pipeline(use_asr: bool, use_nmt: bool, use_tts: bool) -> PipelineConfig:
    """One shared, never mutated config per combination: a job needs no copy of its own."""
    return PipelineConfig(use_asr=use_asr, use_nmt=use_nmt, use_tts=use_tts)


class ClientSide(CoreState):
    # ------------------------------------------------------------------ client side

    def client_message(self, conn_id: str, message: Message, now: float) -> list[Action]:
        if isinstance(message, SessionInit):
            return self._session_init(conn_id, message, now)
        session_id = self.session_by_conn.get(conn_id)
        session = self.sessions.get(session_id) if session_id else None
        index = getattr(message, "utterance_index", None)
        if session is None:
            return [
                Send(
                    conn_id,
                    error_message(
                        ErrorCode.INVALID_SESSION, "send session_init first", utterance_index=index
                    ),
                )
            ]
        claimed = getattr(message, "session_id", None)
        if claimed is not None and claimed != session.session_id:
            return [
                Send(
                    conn_id,
                    error_message(
                        ErrorCode.INVALID_SESSION,
                        "session_id does not match this connection",
                        field="session_id",
                        utterance_index=index,
                    ),
                )
            ]
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
            return self._deliver(session, [])
        if isinstance(message, RoomCreate | RoomJoin | RoomLeave):
            return self._room_message(session, message, now)
        return [
            Send(
                conn_id,
                error_message(
                    ErrorCode.UNSUPPORTED_FEATURE,
                    f"{message.type} is not supported by this scheduler",
                    field="type",
                    utterance_index=index,
                ),
            )
        ]

    def _session_init(self, conn_id: str, m: SessionInit, now: float) -> list[Action]:
        if not _version_ok(m.protocol_version):
            return [
                Send(
                    conn_id,
                    error_message(
                        ErrorCode.UNSUPPORTED_PROTOCOL_VERSION,
                        f"protocol {m.protocol_version} not supported; "
                        f"this scheduler speaks {PROTOCOL_VERSION}",
                        field="protocol_version",
                    ),
                ),
                Close(conn_id, CLOSE_POLICY, "unsupported protocol version"),
            ]
        if conn_id in self.session_by_conn:
            return [
                Send(
                    conn_id,
                    error_message(
                        ErrorCode.INVALID_SESSION, "this connection already has a session"
                    ),
                )
            ]
        if m.resume_token:
            sid = self.by_token.get(m.resume_token)
            session = self.sessions.get(sid) if sid else None
            if session is not None and not session.closing:
                return self._resume(conn_id, session, m.last_received_index, now)
            return [
                Send(
                    conn_id,
                    error_message(
                        ErrorCode.INVALID_SESSION,
                        "resume token unknown or expired; start a new session",
                        field="resume_token",
                    ),
                )
            ]
        paired = None
        if m.pairing_code:
            address = self.trust.address_of(conn_id)
            if not self.trust.guesses.may_guess(address, now):
                return [
                    Send(
                        conn_id,
                        error_message(
                            ErrorCode.RATE_LIMITED,
                            "too many wrong codes from this address; wait a minute",
                            field="pairing_code",
                        ),
                    )
                ]
            paired = self.pairing.redeem(m.pairing_code, now, self.trust.credentials.digest)
            if paired is None:
                self.trust.guesses.wrong(address, now)
                return [
                    Send(
                        conn_id,
                        error_message(
                            ErrorCode.INVALID_PAIRING_CODE,
                            "Pairing code not found or expired",
                            field="pairing_code",
                        ),
                    )
                ]
        session = Session(
            session_id=f"sess-{secrets.token_urlsafe(12)}",
            resume_token=secrets.token_urlsafe(24),
            conn_id=conn_id,
            src_lang=m.src_lang,
            tgt_lang=m.tgt_lang,
            dialect=m.dialect,
            features=m.features,
            pipeline=m.pipeline or PipelineConfig(),
            binary_audio=bool(m.binary_audio),
            sequencer=ResultSequencer(self.s.result_gap_timeout_s),
            created_at=now,
            last_activity=now,
            paired_node_id=paired,
            tokens=float(self.s.utterance_burst),
            tokens_at=now,
        )
        self.sessions[session.session_id] = session
        self.session_by_conn[conn_id] = session.session_id
        self.by_token[session.resume_token] = session.session_id
        self._count("sessions_created")
        log.info(
            "session=%s created %s->%s paired=%s",
            session.session_id,
            m.src_lang,
            m.tgt_lang,
            paired,
        )
        return [
            Send(
                conn_id,
                SessionInitAck(
                    session_id=session.session_id,
                    assigned_node_id=paired,
                    message="session created",
                    protocol_version=PROTOCOL_VERSION,
                    resume_token=session.resume_token,
                    binary_audio=bool(m.binary_audio),
                ),
            )
        ]

    def _resume(
        self, conn_id: str, session: Session, last_received: int | None, now: float
    ) -> list[Action]:
        actions: list[Action] = []
        if session.conn_id is not None and session.conn_id != conn_id:
            self.session_by_conn.pop(session.conn_id, None)
            actions.append(Close(session.conn_id, CLOSE_POLICY, "session resumed elsewhere"))
        session.conn_id = conn_id
        session.disconnected_at = None
        session.last_activity = now
        self.session_by_conn[conn_id] = session.session_id
        self._count("sessions_resumed")
        log.info(
            "session=%s resumed, %d buffered message(s)", session.session_id, len(session.outbox)
        )
        seq = session.sequencer
        last = None if seq.next_index is None else seq.next_index - 1
        actions.append(
            Send(
                conn_id,
                SessionInitAck(
                    session_id=session.session_id,
                    assigned_node_id=session.paired_node_id,
                    message="session resumed",
                    protocol_version=PROTOCOL_VERSION,
                    resume_token=session.resume_token,
                    binary_audio=session.binary_audio,
                    resumed=True,
                    last_delivered_index=last,
                ),
            )
        )
        # Messages sent on the old connection may have been lost with it: replay those the
        # client says it lacks, then what was produced while it was away.
        outbox, session.outbox = session.outbox, []
        queued = {getattr(m, "utterance_index", None) for m in outbox}
        floor = -1 if last_received is None else last_received
        for index, message in seq.delivered.items():
            if index > floor and index not in queued:
                actions.append(Send(conn_id, message))
        actions += [Send(conn_id, msg) for msg in outbox]
        return actions

    def _take_token(self, session: Session, now: float) -> bool:
        rate, burst = self.s.utterances_per_s, float(self.s.utterance_burst)
        session.tokens = min(burst, session.tokens + (now - session.tokens_at) * rate)
        session.tokens_at = now
        if session.tokens < 1.0:
            return False
        session.tokens -= 1.0
        return True

    def _utterance(self, session: Session, m: Utterance, now: float) -> list[Action]:
        conn = session.conn_id
        assert conn is not None
        index = m.utterance_index
        if session.closing:
            return [
                Send(
                    conn,
                    error_message(
                        ErrorCode.SESSION_CLOSED, "session is closing", utterance_index=index
                    ),
                )
            ]
        state = session.sequencer.accept(index) if self._peek_ok(session, index) else None
        if state is None:
            return [
                Send(
                    conn,
                    error_message(
                        ErrorCode.RATE_LIMITED,
                        "too many utterances; slow down",
                        utterance_index=index,
                    ),
                )
            ]
        if state is Acceptance.IN_PROGRESS:
            return []  # a resend of an utterance already being worked on: its result will come
        if state is Acceptance.DELIVERED:
            old = session.sequencer.replay(index)
            if old is not None:
                return [Send(conn, old)]
            return [
                Send(
                    conn,
                    error_message(
                        ErrorCode.INVALID_MESSAGE,
                        f"utterance {index} was already answered",
                        field="utterance_index",
                        utterance_index=index,
                    ),
                )
            ]
        self._count("utterances_accepted")
        src = m.src_lang or session.src_lang
        tgt = m.tgt_lang or session.tgt_lang
        pipeline = m.pipeline or session.pipeline
        features = m.features or session.features
        audio = m.audio
        duration = (
            message_audio_duration_s(audio.to_bytes(), m.audio_format, m.sample_rate)
            if m.audio_format == "wav"
            else (len(audio) / (2 * m.sample_rate) if m.audio_format == "pcm16" else 10.0)
        )
        room = self.rooms.room_of(session.session_id)
        if room is not None:
            room.last_activity = now
            langs = room.languages_for(session.session_id, tgt)
            primary_lang = tgt if tgt in langs else langs[0]
        else:
            langs, primary_lang = [tgt], tgt
        actions: list[Action] = []
        for lang in langs:
            self._job_seq += 1
            use_nmt = pipeline.use_nmt and lang != src
            job = Job(
                job_id=f"job-{self._job_prefix}-{self._job_seq}",
                session_id=session.session_id,
                utterance_index=index,
                src_lang=src,
                tgt_lang=lang,
                pipeline=_pipeline(pipeline.use_asr, use_nmt, pipeline.use_tts),
                features=features,
                dialect=m.dialect or session.dialect,
                audio=audio,
                audio_format=m.audio_format,
                sample_rate=m.sample_rate,
                audio_s=duration or 10.0,
                needs=JobNeeds(
                    src,
                    lang,
                    pipeline.use_tts,
                    use_nmt,
                    frozenset(features.requested()) if features else frozenset(),
                    session.paired_node_id,
                ),
                created_at=now,
                primary=(lang == primary_lang),
            )
            if room is not None:
                job.room_code = room.code
                job.listeners = room.members_with(lang, exclude=session.session_id)
                job.speaker_name = room.members[session.session_id].display_name
            self.jobs[job.job_id] = job
            self._job_log(job, "created", now, src=src, tgt=lang)
            actions += self._dispatch(job, now)
        return actions

    def _peek_ok(self, session: Session, index: int) -> bool:
        """Rate-limit only new utterances, never resends of known ones."""
        seq = session.sequencer
        if index in seq.accepted or (seq.next_index is not None and index < seq.next_index):
            return True
        return self._take_token(session, now=session.last_activity)

    def client_disconnected(self, conn_id: str, now: float) -> list[Action]:
        session_id = self.session_by_conn.pop(conn_id, None)
        session = self.sessions.get(session_id) if session_id else None
        if session is None or session.conn_id != conn_id:
            return []
        session.conn_id = None
        session.disconnected_at = now
        if session.closing:
            return self._drop_session(session)
        return []

    def _drop_session(self, session: Session) -> list[Action]:
        self.sessions.pop(session.session_id, None)
        self.by_token.pop(session.resume_token, None)
        if session.conn_id is not None:
            self.session_by_conn.pop(session.conn_id, None)
        for job in [j for j in self.jobs.values() if j.session_id == session.session_id]:
            job.primary = False
            if not job.listeners:
                self._abandon(job)
        return self._leave_room(session)

    def _abandon(self, job: Job) -> None:
        self.jobs.pop(job.job_id, None)
        if job.job_id in self.queue:
            self.queue.remove(job.job_id)
        node = self.registry.nodes.get(job.node_id or "")
        if node is not None:
            node.in_flight.discard(job.job_id)
