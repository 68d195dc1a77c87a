"""Property test: random sequences of valid and invalid events against the pure core.

Clients open sessions, send utterances (good and bad audio, indexes in order, skipped, far
ahead, beyond what JSON can hold), stream utterances as chunks (in order, with gaps, resent,
at another sample rate, past the length limit), disconnect and resume; nodes register (some
with stream slots), ack, answer, send partials (current and stale), fail, heartbeat and
vanish; time moves on. After every step: no exception escaped, no index got two final
messages, no partial came after its index's final message, every accepted index not yet
answered has a live job or an open stream (nothing is wedged), and every per-session and
global structure is within its bound. At the end, with a node that
answers everything and time moving on, every accepted index of every surviving session has
ended in exactly one final message.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from lingua_protocol import (
    MAX_UTTERANCE_INDEX,
    JobAssign,
    Message,
    ProtocolError,
    parse_client_message,
    parse_node_message,
)
from lingua_scheduler._core.actions import Action, Close, Send, SetAudioTransport
from lingua_scheduler._core.engine import SchedulerCore
from lingua_scheduler._core.jobs import JobState
from lingua_scheduler._core.ordering import REPLAY_KEEP
from lingua_scheduler._core.randomness import Randomness
from lingua_scheduler._settings import SchedulerSettings
from lingua_scheduler.testing import node_register

LIMITS: dict[str, Any] = {
    "max_in_flight_utterances": 4,
    "max_in_flight_bytes": 120_000,
    "utterance_index_window": 8,
    "max_queue_bytes": 200_000,
    "session_hold_bytes": 150_000,
    "replay_buffer_bytes": 60_000,
    "queue_timeout_s": 4.0,
    "ack_timeout_s": 2.0,
    "job_timeout_s": 3.0,
    "job_timeout_per_audio_s": 0.0,
    "max_attempts": 2,
    "result_gap_timeout_s": 3.0,
    "resume_grace_s": 30.0,
    "utterance_burst": 1000,
    "utterances_per_s": 1000.0,
    "heartbeat_interval_s": 15.0,
    "max_stream_ms": 2000,
    "stream_close_grace_s": 5.0,
}
FINAL = ("translation_result", "missing_result", "error")
AUDIO = {
    "small": (base64.b64encode(b"\x00\x00" * 50).decode(), "pcm16"),
    "large": (base64.b64encode(b"\x00\x00" * 50_000).decode(), "pcm16"),
    "bad_wav": ("abc", "wav"),
    "bad_pcm": ("abc", "pcm16"),
}
TTS = base64.b64encode(b"\x00\x01" * 40_000).decode()


@dataclass
class ClientModel:
    conn: str | None
    session_id: str
    token: str
    received_max: int = -1


def _sends(actions: list[Action]) -> list[Send]:
    return [a for a in actions if isinstance(a, Send)]


class CoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0
        self.s = SchedulerSettings(**LIMITS)
        self.core = SchedulerCore(self.s, randomness=Randomness.seeded(7))
        self.seq = 0
        self.clients: list[ClientModel] = []
        self.nodes: dict[str, str] = {}  # conn -> node id, connected ones
        self.assigned: dict[str, list[JobAssign]] = {}  # node conn -> job_assigns not answered
        self.finals: Counter[tuple[str, int]] = Counter()
        self.partials: Counter[tuple[str, int]] = Counter()
        self.accepted: set[tuple[str, int]] = set()
        self.gone: set[str] = set()  # sessions the core dropped (grace over, refused resume)

    # ------------------------------------------------------------------ plumbing

    def _conn(self, kind: str) -> str:
        self.seq += 1
        return f"{kind}-{self.seq}"

    def _session_of(self, conn: str) -> ClientModel | None:
        return next((c for c in self.clients if c.conn == conn), None)

    def _apply(self, actions: list[Action], skip: tuple[str, int] | None = None) -> None:
        closed: list[str] = []
        for action in actions:
            if isinstance(action, Close):
                closed.append(action.conn_id)
                continue
            if isinstance(action, SetAudioTransport):
                assert action.binary is False  # nobody here negotiates binary frames
                continue
            assert isinstance(action, Send)
            self._record(action.conn_id, action.message, skip)
        for conn in closed:
            if conn in self.nodes:
                self._apply(self.core.node_disconnected(conn, self.now))
                self.nodes.pop(conn, None)
                self.assigned.pop(conn, None)
            else:
                client = self._session_of(conn)
                self._apply(self.core.client_disconnected(conn, self.now))
                if client is not None:
                    client.conn = None

    def _record(self, conn: str, message: Message, skip: tuple[str, int] | None) -> None:
        if isinstance(message, JobAssign):
            self.assigned.setdefault(conn, []).append(message)
            return
        client = self._session_of(conn)
        index = getattr(message, "utterance_index", None)
        if client is not None and message.type == "asr_partial" and index is not None:
            key = (client.session_id, index)
            assert self.finals[key] == 0, ("partial after the final message", key)
            self.partials[key] += 1
            return
        if client is None or message.type not in FINAL or index is None:
            return
        key = (client.session_id, index)
        if key == skip:
            return  # the immediate refusal of an utterance that was not accepted
        self.finals[key] += 1
        client.received_max = max(client.received_max, index)

    def _client(self, conn: str, body: dict[str, Any]) -> list[Action]:
        try:
            message = parse_client_message(json.dumps(body), verify_audio=False)
        except ProtocolError:
            return []  # the shell answers a parse error itself; the core never sees it
        return self.core.client_message(conn, message, self.now)

    def _node(self, conn: str, body: dict[str, Any]) -> None:
        self._apply(self.core.node_message(conn, parse_node_message(json.dumps(body)), self.now))

    def _live(self) -> list[ClientModel]:
        return [c for c in self.clients if c.session_id in self.core.sessions]

    # ------------------------------------------------------------------ clients

    @rule()
    def open_session(self) -> None:
        if len(self.clients) >= 4:
            return
        conn = self._conn("client")
        actions = self._client(conn, {"type": "session_init", "src_lang": "en", "tgt_lang": "zh"})
        ack = _sends(actions)[0]
        assert ack.message.type == "session_init_ack"
        self.clients.append(
            ClientModel(conn, ack.message.session_id, ack.message.resume_token)  # type: ignore[attr-defined]
        )

    @rule()
    def open_streaming_session(self) -> None:
        if len(self.clients) >= 4:
            return
        conn = self._conn("client")
        body = {
            "type": "session_init",
            "src_lang": "en",
            "tgt_lang": "zh",
            "enable_streaming_asr": True,
        }
        ack = _sends(self._client(conn, body))[0]
        assert ack.message.streaming is True  # type: ignore[attr-defined]
        self.clients.append(
            ClientModel(conn, ack.message.session_id, ack.message.resume_token)  # type: ignore[attr-defined]
        )

    @rule(
        which=st.integers(0, 3),
        kind=st.sampled_from(["next", "next", "next", "final", "final", "gap", "resend", "rate"]),
        size=st.sampled_from([320, 320, 16_000, 3]),
    )
    def chunk(self, which: int, kind: str, size: int) -> None:
        """A chunk of the session's open stream, or the first chunk of a new index."""
        live = [c for c in self._live() if c.conn is not None]
        if not live:
            return
        client = live[which % len(live)]
        assert client.conn is not None
        session = self.core.sessions[client.session_id]
        seq = session.sequencer
        open_streams = [st for st in session.streams.values() if not st.closed]
        if open_streams:
            stream = open_streams[0]
            index, next_seq = stream.utterance_index, stream.next_seq
        else:
            done = [i for s, i in self.accepted if s == client.session_id]
            index = max([*done, (seq.next_index or 0) - 1, client.received_max]) + 1
            next_seq = 0
        number = {"gap": next_seq + 1, "resend": max(0, next_seq - 1)}.get(kind, next_seq)
        body = {
            "type": "audio_chunk",
            "session_id": client.session_id,
            "utterance_index": index,
            "seq": number,
            "is_final": kind == "final",
            "payload": base64.b64encode(b"\x00" * size).decode(),
            "sample_rate": 8000 if kind == "rate" else 16000,
        }
        was_accepted = (client.session_id, index) in self.accepted
        before_next = seq.next_index
        actions = self._client(client.conn, body)
        now_accepted = index in seq.accepted or (
            seq.next_index is not None
            and seq.next_index > index
            and (before_next is None or before_next <= index)
        )
        if was_accepted or now_accepted:
            self.accepted.add((client.session_id, index))
            self._apply(actions)
        else:
            self._apply(actions, skip=(client.session_id, index))

    @rule(which=st.integers(0, 20), stale=st.sampled_from([False, False, False, True]))
    def node_sends_partial(self, which: int, stale: bool) -> None:
        pending = [(c, j) for c, jobs in sorted(self.assigned.items()) for j in jobs if j.stream]
        if not pending:
            return
        conn, job = pending[which % len(pending)]
        if conn not in self.nodes:
            return
        body = {
            "type": "asr_partial",
            "job_id": job.job_id,
            "attempt_id": f"{job.job_id}.0" if stale else job.attempt_id,
            "session_id": job.session_id,
            "utterance_index": job.utterance_index,
            "text": "partial",
        }
        self._node(conn, body)

    @rule(
        which=st.integers(0, 3),
        ahead=st.sampled_from([0, 0, 0, 0, 0, 0, 1, 2, 7, 8, 1000, MAX_UTTERANCE_INDEX, 2**63]),
        audio=st.sampled_from(["small", "small", "small", "large", "bad_wav", "bad_pcm"]),
    )
    def utterance(self, which: int, ahead: int, audio: str) -> None:
        live = [c for c in self._live() if c.conn is not None]
        if not live:
            return
        client = live[which % len(live)]
        assert client.conn is not None
        session = self.core.sessions[client.session_id]
        seq = session.sequencer
        done = [i for s, i in self.accepted if s == client.session_id]
        base = max([*done, (seq.next_index or 0) - 1, client.received_max]) + 1
        index = base + ahead
        text, fmt = AUDIO[audio]
        body = {
            "type": "utterance",
            "session_id": client.session_id,
            "utterance_index": index,
            "audio": text,
            "audio_format": fmt,
            "sample_rate": 16000,
        }
        before_next = seq.next_index
        actions = self._client(client.conn, body)
        now_accepted = index in seq.accepted or (
            seq.next_index is not None
            and seq.next_index > index
            and (before_next is None or before_next <= index)
        )
        if now_accepted:
            self.accepted.add((client.session_id, index))
            self._apply(actions)
        else:
            refusals = [
                a
                for a in actions
                if isinstance(a, Send) and getattr(a.message, "utterance_index", None) == index
            ]
            assert len(refusals) <= 1, refusals
            self._apply(actions, skip=(client.session_id, index))

    @rule(which=st.integers(0, 3))
    def client_disconnects(self, which: int) -> None:
        live = [c for c in self._live() if c.conn is not None]
        if not live:
            return
        client = live[which % len(live)]
        assert client.conn is not None
        conn, client.conn = client.conn, None
        self._apply(self.core.client_disconnected(conn, self.now))

    @rule(which=st.integers(0, 3))
    def client_resumes(self, which: int) -> None:
        away = [c for c in self.clients if c.conn is None and c.session_id not in self.gone]
        if not away:
            return
        self._resume(away[which % len(away)])

    def _resume(self, client: ClientModel) -> None:
        conn = self._conn("client")
        body: dict[str, Any] = {
            "type": "session_init",
            "src_lang": "en",
            "tgt_lang": "zh",
            "resume_token": client.token,
        }
        if client.received_max >= 0:
            body["last_received_index"] = client.received_max
        actions = self._client(conn, body)
        first = _sends(actions)[0]
        if first.message.type == "error":
            self.gone.add(client.session_id)
            return
        client.conn = conn
        self._apply(actions)

    # ------------------------------------------------------------------ nodes

    @rule(max_jobs=st.integers(1, 3), streams=st.sampled_from([0, 0, 1, 2]))
    def node_registers(self, max_jobs: int, streams: int) -> None:
        if len(self.nodes) >= 3:
            return
        conn = self._conn("node")
        self.nodes[conn] = f"n{self.seq}"
        body = node_register(
            f"n{self.seq}", max_concurrent_jobs=max_jobs, max_concurrent_streams=streams
        )
        self._node(conn, body)

    @rule(which=st.integers(0, 2))
    def node_vanishes(self, which: int) -> None:
        if not self.nodes:
            return
        conn = sorted(self.nodes)[which % len(self.nodes)]
        self.nodes.pop(conn)
        self.assigned.pop(conn, None)
        self._apply(self.core.node_disconnected(conn, self.now))

    @rule(
        which=st.integers(0, 20),
        outcome=st.sampled_from(["ack", "ok", "ok_tts", "retryable", "fatal"]),
    )
    def node_answers(self, which: int, outcome: str) -> None:
        pending = [(c, j) for c, jobs in sorted(self.assigned.items()) for j in jobs]
        if not pending:
            return
        conn, job = pending[which % len(pending)]
        if conn not in self.nodes:
            return
        base = {"job_id": job.job_id, "attempt_id": job.attempt_id}
        if outcome == "ack":
            self._node(conn, {"type": "job_ack", **base})
            return
        self.assigned[conn].remove(job)
        body: dict[str, Any] = {"type": "job_result", **base, "success": outcome.startswith("ok")}
        if outcome == "ok_tts":
            body.update(text_translated="t", tts_audio=TTS, tts_format="pcm16")
        elif outcome == "retryable":
            body["error"] = {"code": "INFERENCE_BACKEND_ERROR", "message": "oom"}
        elif outcome == "fatal":
            body["error"] = {"code": "AUDIO_DECODE_FAILED", "message": "bad audio"}
        self._node(conn, body)

    @rule()
    def nodes_heartbeat(self) -> None:
        for conn, node_id in sorted(self.nodes.items()):
            self._node(conn, {"type": "node_heartbeat", "node_id": node_id, "timestamp": 1})

    @rule(seconds=st.sampled_from([0.5, 1.0, 2.5, 4.0, 10.0]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds
        self._apply(self.core.tick(self.now))
        for client in self.clients:
            if client.session_id not in self.core.sessions:
                self.gone.add(client.session_id)

    # ------------------------------------------------------------------ invariants

    @invariant()
    def no_index_has_two_final_messages(self) -> None:
        assert all(n <= 1 for n in self.finals.values()), self.finals.most_common(3)

    @invariant()
    def every_unanswered_index_has_a_live_job(self) -> None:
        for session in self.core.sessions.values():
            seq = session.sequencer
            for index in seq.accepted:
                if index in seq.ready:
                    continue
                jobs = [
                    self.core.jobs[j]
                    for j in session.job_ids
                    if j in self.core.jobs and self.core.jobs[j].utterance_index == index
                ]
                stream = session.streams.get(index)
                buffered = stream is not None and stream.job_id is None and not stream.closed
                assert buffered or any(j.primary for j in jobs), (session.session_id, index)
        for job in self.core.jobs.values():
            assert job.state is not JobState.DONE
            open_stream = job.stream is not None and not job.stream.closed
            assert job.deadline is not None or open_stream  # its stream's close-by time holds
            assert (job.state is JobState.QUEUED) == (job.job_id in self.core.queue)

    @invariant()
    def every_structure_is_within_its_bound(self) -> None:
        s = self.s
        assert self.core.queue.bytes <= s.max_queue_bytes
        for session in self.core.sessions.values():
            seq = session.sequencer
            assert len(seq.accepted) <= s.max_in_flight_utterances
            assert seq.in_flight_bytes <= s.max_in_flight_bytes
            assert seq.in_flight_bytes == sum(seq.accepted.values())
            assert len(seq.delivered) <= REPLAY_KEEP
            assert seq.delivered_bytes <= s.replay_buffer_bytes
            assert session.outbox_bytes <= s.session_hold_bytes
            assert seq.ready_bytes <= s.session_hold_bytes + 4096
            assert set(seq.ready) <= set(seq.accepted)
            if seq.next_index is not None:
                window = range(seq.next_index, seq.next_index + s.utterance_index_window)
                assert all(i in window for i in seq.accepted)
            assert len(session.job_ids) <= s.max_in_flight_utterances
            assert set(session.streams) <= set(seq.accepted)
            for stream in session.streams.values():
                assert stream.duration_ms() <= s.max_stream_ms
        for node in self.core.registry.nodes.values():
            assert node.stream_jobs <= node.in_flight
            assert len(node.stream_jobs) <= (node.register.max_concurrent_streams or 0)
        for conn, sid in self.core.sessions.conns().items():
            assert self.core.sessions[sid].conn_id == conn

    def teardown(self) -> None:
        """With a node that answers everything and time moving on, every accepted index of a
        session that is still there ends in exactly one final message."""
        for client in self.clients:
            if client.conn is None and client.session_id not in self.gone:
                self._resume(client)
        rescue = self._conn("node")
        self.nodes[rescue] = "rescue"
        self._node(rescue, node_register("rescue", max_concurrent_jobs=50))
        for _ in range(40):
            for conn in sorted(self.assigned):
                for job in list(self.assigned.get(conn, [])):
                    if conn in self.nodes:
                        self.assigned[conn].remove(job)
                        ok = {"type": "job_result", "job_id": job.job_id, "success": True}
                        self._node(conn, {**ok, "attempt_id": job.attempt_id})
            self.nodes_heartbeat()
            self.now += 1.0
            self._apply(self.core.tick(self.now))
        for sid, index in self.accepted:
            session = self.core.sessions.get(sid)
            if session is None or session.conn_id is None:
                continue
            assert self.finals[(sid, index)] == 1, (sid, index, self.finals[(sid, index)])
            assert session.sequencer.pending() == 0


CoreMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
test_core_state_machine = CoreMachine.TestCase


class StreamingCoreMachine(CoreMachine):
    """The same machine, starting with a node that has stream slots and a session that
    streams, so that most runs exercise chunks, partials, stream failover and the buffered
    fallback (from a cold start few runs reach a stream)."""

    @initialize()
    def a_streaming_node_and_session(self) -> None:
        self.node_registers(max_jobs=2, streams=2)
        self.open_streaming_session()


StreamingCoreMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
test_core_state_machine_with_streams = StreamingCoreMachine.TestCase
