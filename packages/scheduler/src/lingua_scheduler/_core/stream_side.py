"""Streamed utterances: `audio_chunk`s from clients, `asr_partial`s from nodes, and the
deadline by which an open stream must close.

The flow (docs/scheduler.md, "Streaming"): the first chunk of an index opens the utterance
(it counts against the session's flow-control window like an `utterance`) and picks a node
with the existing selection, among nodes with a free stream slot. That node gets a streaming
`job_assign` and then every further chunk as `job_audio`, sends partials, and answers once
after the final chunk. When no streaming node can take it, the utterance is buffered and runs
as whole-utterance jobs at its final chunk (no partials). Every chunk is kept until the final
result, so a node that dies mid-utterance is replaced (`JobFlow.dispatch`) and the new node
gets all audio so far. In a room, the other languages' jobs are whole jobs created at the
final chunk; listeners see the speaker's partials.

Each handler checks everything first and raises `CoreError` (nothing accepted), or, for a
chunk of an utterance already open, ends that utterance with the error for its index: the
client gets exactly one final message per index either way.
"""

from __future__ import annotations

import logging

from lingua_protocol import (
    AsrPartial,
    AudioChunk,
    AudioData,
    ErrorCode,
    JobAudio,
    JobCancel,
    error_message,
)

from .actions import Action, Send, SendLatest
from .admission import check_flow, check_window
from .delivery import Delivery
from .errors import CoreError
from .job_build import new_job
from .job_flow import JobFlow, serving
from .jobs import Job, JobState, log_job
from .ordering import Acceptance
from .registry import NodeRecord
from .sessions import Session, take_token
from .streams import Stream, check_chunk, pick_stream_node, split_key
from .tables import CoreTables

log = logging.getLogger("lingua.scheduler")

_LIVE = (JobState.ASSIGNED, JobState.RUNNING)


class StreamSide:
    def __init__(self, tables: CoreTables, flow: JobFlow, delivery: Delivery) -> None:
        self.s = tables.config
        self.rng = tables.random.choice_rng
        self.stats = tables.stats
        self.sessions = tables.sessions
        self.registry = tables.registry
        self.capable = tables.capable
        self.jobs = tables.jobs
        self.rooms = tables.rooms
        self.deadlines = tables.deadlines
        self.flow = flow
        self.delivery = delivery

    # ------------------------------------------------------------------ chunks

    def chunk(self, session: Session, m: AudioChunk, now: float) -> list[Action]:
        """One `audio_chunk` of a session that was granted streaming. A refusal raises
        `CoreError` (nothing accepted); a bug once the index is accepted still ends it, with
        INTERNAL_ERROR, or it would hold every later result of the session for ever."""
        try:
            return self._chunk(session, m, now)
        except CoreError:
            raise
        except Exception:
            if m.utterance_index not in session.sequencer.accepted:
                raise  # nothing accepted: the core's guard answers INTERNAL_ERROR
            log.exception("session=%s utterance %d failed", session.session_id, m.utterance_index)
            return self.delivery.end_in_internal_error(session, m.utterance_index, now)

    def _chunk(self, session: Session, m: AudioChunk, now: float) -> list[Action]:
        index = m.utterance_index
        stream = session.streams.get(index)
        if stream is None:
            state = session.sequencer.classify(index)
            if state is Acceptance.NEW:
                return self._open(session, m, now)
            # A whole utterance, or a streamed one that already ended: this index's one final
            # message is on its way or delivered (a resumed session gets it replayed).
            return []
        if m.seq < stream.next_seq:
            return []  # a resend of a chunk already taken (after a reconnect): deduplicated
        if stream.closed:
            # No utterance_index: this index's one final message is still to come.
            raise CoreError(
                ErrorCode.INVALID_MESSAGE,
                f"utterance {index} already had its final chunk (seq {stream.next_seq - 1})",
                field="seq",
            )
        try:
            raw = check_chunk(self.s, stream, m)
            check_flow(session.sequencer, index, len(raw), self.s, self.stats, opens=False)
        except CoreError as exc:
            self.stats.count("streams_refused_chunk")
            return self.end(session, stream, exc.code, exc.message, now)
        return self._take(session, stream, m, raw, now)

    def _open(self, session: Session, m: AudioChunk, now: float) -> list[Action]:
        index = m.utterance_index
        if session.closing:
            raise CoreError(ErrorCode.SESSION_CLOSED, "session is closing", utterance_index=index)
        raw = check_chunk(self.s, None, m)
        check_window(session.sequencer, index, self.s)
        check_flow(session.sequencer, index, len(raw), self.s, self.stats)
        primary = self._primary_job(session, index, AudioData.from_bytes(raw), m, now)
        nodes = self.capable.nodes(primary.needs)
        if not serving(nodes):
            raise CoreError(
                ErrorCode.NO_AVAILABLE_NODE,
                f"no available node for {primary.src_lang}->{primary.tgt_lang} (utterance {index})",
                utterance_index=index,
            )
        if not take_token(session, now, self.s.utterances_per_s, self.s.utterance_burst):
            raise CoreError(
                ErrorCode.RATE_LIMITED,
                f"more than {self.s.utterances_per_s:g} utterances a second; slow down",
                utterance_index=index,
            )
        sticky = session.sticky_node_id if self.s.sticky_nodes else None
        node = pick_stream_node(nodes, self.rng, sticky, frozenset())
        # Everything checked: accept the index and keep its audio.
        session.sequencer.accept(index, len(raw))
        stream = Stream(
            session_id=session.session_id,
            utterance_index=index,
            sample_rate=m.sample_rate,
            opened_at=now,
            close_by=now + self.s.max_stream_ms / 1000.0 + self.s.stream_close_grace_s,
            partial_interval_ms=session.partial_interval_ms,
            pipeline=m.pipeline,
        )
        stream.audio += raw
        stream.next_seq = 1
        stream.closed = m.is_final
        session.streams[index] = stream
        self.deadlines.push(stream.close_by, ("stream", stream.key))
        self.stats.count("utterances_accepted")
        self.stats.count("streams_opened")
        actions: list[Action] = []
        job: Job | None = None
        if node is not None:
            job = primary
            job.stream = stream
            stream.job_id = job.job_id
            self.jobs.add(job, session)
            log_job(job, "created", now, src=job.src_lang, tgt=job.tgt_lang, stream=True)
            actions += self.flow.assign(job, node, now)
        else:
            self.stats.count("streams_buffered")
            log.info(
                "session=%s index=%d no streaming node free: buffered, runs whole at its end",
                session.session_id,
                index,
            )
        if m.is_final:
            actions += self._close(session, stream, job, now)
        return actions

    def _primary_job(
        self, session: Session, index: int, audio: AudioData, m: AudioChunk, now: float
    ) -> Job:
        """The job in the session's own target language (not yet in the table)."""
        room = self.rooms.room_of(session.session_id)
        return new_job(
            self.jobs.new_id(),
            session,
            index,
            session.src_lang,
            session.tgt_lang,
            m.pipeline or session.pipeline,
            session.features,
            session.dialect,
            audio,
            "pcm16",
            m.sample_rate,
            self.s.max_stream_ms / 1000.0,
            room,
            True,
            now,
        )

    def _take(
        self, session: Session, stream: Stream, m: AudioChunk, raw: bytes, now: float
    ) -> list[Action]:
        """A checked chunk of an open stream: keep it, pass it on to the stream's node."""
        job = self.jobs.get(stream.job_id) if stream.job_id is not None else None
        actions: list[Action] = []
        if job is not None and job.state in _LIVE:
            node = self.registry.nodes.get(job.node_id or "")
            if node is not None and node.conn_id is not None:
                audio = JobAudio(
                    job_id=job.job_id,
                    attempt_id=job.attempt_id,
                    seq=m.seq,
                    is_final=m.is_final,
                    payload=m.payload,
                    sample_rate=stream.sample_rate,
                )
                actions.append(Send(node.conn_id, audio))
        stream.audio += raw
        stream.next_seq += 1
        session.sequencer.grow(m.utterance_index, len(raw))
        if m.is_final:
            stream.closed = True
            actions += self._close(session, stream, job, now)
        return actions

    def _close(self, session: Session, stream: Stream, job: Job | None, now: float) -> list[Action]:
        """The final chunk came: the streaming job's run timeout starts now; a buffered
        utterance (and, in a room, every other language) becomes whole jobs."""
        stream.closed_at = now
        duration_s = stream.duration_ms() / 1000.0
        audio = AudioData.from_bytes(bytes(stream.audio))
        skip: str | None = None
        if job is not None:
            skip = job.tgt_lang
            job.audio, job.audio_bytes, job.audio_s = audio, len(audio), duration_s
            if job.state is JobState.RUNNING:
                timeout_s = self.s.job_timeout_s + self.s.job_timeout_per_audio_s * duration_s
                self.flow.set_deadline(job, now + timeout_s)
            room = self.rooms.room_of(session.session_id)
            if room is not None:
                job.listeners = room.members_with(job.tgt_lang, exclude=session.session_id)
        else:
            del session.streams[stream.utterance_index]  # its audio moves into whole jobs
        return self._whole_jobs(session, stream, audio, duration_s, skip, now)

    def _whole_jobs(
        self,
        session: Session,
        stream: Stream,
        audio: AudioData,
        duration_s: float,
        skip: str | None,
        now: float,
    ) -> list[Action]:
        """Whole-utterance jobs for the languages no streaming job serves."""
        tgt = session.tgt_lang
        room = self.rooms.room_of(session.session_id)
        if room is not None:
            room.last_activity = now
            langs = room.languages_for(session.session_id, tgt)
        else:
            langs = [tgt]
        actions: list[Action] = []
        for lang in langs:
            if lang == skip:
                continue
            job = new_job(
                self.jobs.new_id(),
                session,
                stream.utterance_index,
                session.src_lang,
                lang,
                stream.pipeline or session.pipeline,
                session.features,
                session.dialect,
                audio,
                "pcm16",
                stream.sample_rate,
                duration_s,
                room,
                lang == tgt,
                now,
            )
            self.jobs.add(job, session)
            log_job(job, "created", now, src=job.src_lang, tgt=lang)
            actions += self.flow.dispatch(job, now)
        return actions

    def end(
        self, session: Session, stream: Stream, code: ErrorCode, text: str, now: float
    ) -> list[Action]:
        """End an open streamed utterance with an error for its index (a refused chunk, or no
        final chunk in time); its node, if any, is told to stop."""
        session.streams.pop(stream.utterance_index, None)
        self.stats.count("streams_ended_by_error")
        log.info(
            "session=%s index=%d stream ended: %s %s",
            session.session_id,
            stream.utterance_index,
            code.value,
            text,
        )
        job = self.jobs.get(stream.job_id) if stream.job_id is not None else None
        if job is not None:
            actions: list[Action] = []
            node = self.registry.nodes.get(job.node_id or "")
            if node is not None and node.conn_id is not None and job.state in _LIVE:
                cancel = JobCancel(job_id=job.job_id, attempt_id=job.attempt_id, reason=code.value)
                actions.append(Send(node.conn_id, cancel))
            return actions + self.flow.fail(job, code, text, now)
        error = error_message(
            code, text, session_id=session.session_id, utterance_index=stream.utterance_index
        )
        return self.delivery.deliver(
            session, session.sequencer.finish(stream.utterance_index, error, now)
        )

    def deadline(self, key: str, now: float) -> list[Action]:
        """A stream's close-by time came: if it is still open, it ends with JOB_TIMEOUT."""
        session_id, index = split_key(key)
        session = self.sessions.get(session_id)
        stream = session.streams.get(index) if session is not None else None
        if session is None or stream is None or stream.closed or stream.close_by > now:
            return []
        limit_s = self.s.max_stream_ms / 1000.0 + self.s.stream_close_grace_s
        text = f"utterance {index}: no final chunk within {limit_s:g} s of its first"
        return self.end(session, stream, ErrorCode.JOB_TIMEOUT, text, now)

    # ------------------------------------------------------------------ partials

    def partial(self, node: NodeRecord, m: AsrPartial, now: float) -> list[Action]:
        """A node's partial: relayed at once (never through the result sequencer) if it comes
        from the node holding the current attempt of a live streaming job; the scheduler
        stamps its revision. Every copy is a `SendLatest`, so a slow reader keeps only the
        newest partial per utterance."""
        job = self.jobs.get(m.job_id or "")
        if (
            job is None
            or job.stream is None
            or job.node_id != node.node_id
            or job.state not in _LIVE
            or (m.attempt_id is not None and m.attempt_id != job.attempt_id)
        ):
            self.stats.count("partials_dropped_stale")
            return []
        stream = job.stream
        revision = stream.revision + 1
        base = {
            "utterance_index": job.utterance_index,
            "text": m.text,
            "stable_text": m.stable_text,
            "revision": revision,
            "audio_ms": m.audio_ms,
            "job_id": job.job_id,
            "node_id": node.node_id,
        }
        translated = {"text_translated": m.text_translated, "tgt_lang": job.tgt_lang}
        if m.text_translated is None:
            translated = {}
        key = (job.session_id, job.utterance_index)
        actions: list[Action] = []
        session = self.sessions.get(job.session_id)
        if job.primary and session is not None and session.conn_id is not None:
            own = AsrPartial.model_validate({**base, **translated, "session_id": job.session_id})
            actions.append(SendLatest(session.conn_id, own, key))
        room = self.rooms.room_of(job.session_id)
        if room is not None:
            speaker = room.members.get(job.session_id)
            room_fields = {"room_code": room.code, "speaker_session_id": job.session_id}
            if speaker is not None and speaker.display_name is not None:
                room_fields["speaker_display_name"] = speaker.display_name
            for member in room.members.values():
                listener = self.sessions.get(member.session_id)
                if member.session_id == job.session_id or listener is None:
                    continue
                if listener.conn_id is None:
                    continue  # partials are not held for a disconnected listener
                same_lang = member.preferred_lang == job.tgt_lang
                if stream.closed and not same_lang:
                    # This listener's final copy comes from a whole job created at the final
                    # chunk, which may finish first: no partial may follow it.
                    continue
                copy = AsrPartial.model_validate(
                    {
                        **base,
                        **(translated if same_lang else {}),
                        **room_fields,
                        "session_id": member.session_id,
                    }
                )
                actions.append(SendLatest(listener.conn_id, copy, key))
        stream.revision = revision
        self.stats.count("partials_relayed")
        return actions
