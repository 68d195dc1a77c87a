"""Random event sequences through the session core, whole and streamed utterances mixed,
against a small model of a scheduler (plain state in the test, no sockets): after every step,
nothing said is lost or answered twice, a chunk's seq always carries the same bytes, chunks go
in order from seq 0 on each connection, nothing goes for an answered index, partials only
grow, and the byte bound adds up."""

from __future__ import annotations

import random
from collections import defaultdict

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from lingua_client._session import Backoff, ClientSession
from lingua_protocol import (
    AsrPartial,
    AudioChunk,
    Error,
    MissingResult,
    SessionInit,
    SessionInitAck,
    TranslationResult,
    Utterance,
)

PIECE = b"\x02\x00" * 500  # 1,000 bytes


class StreamingSession(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.s = ClientSession(
            SessionInit(src_lang="en", tgt_lang="en", enable_streaming_asr=True),
            backoff=Backoff(0.1, 0.4),
            rng=random.Random(1),
            min_chunk_bytes=1000,
            max_chunk_bytes=2500,
            max_stream_bytes=6000,
            max_unanswered_bytes=40_000,
        )
        self.now = 0.0
        self.sid = "s1"
        self.sessions = 1
        self.s.opened(self.ack(), self.now)
        self.said = 0
        self.open: list[int] = []
        self.finals: dict[int, int] = defaultdict(int)
        self.partials: dict[tuple[int, str], list[int]] = defaultdict(list)
        # the model scheduler, per (session, wire index)
        self.seq_bytes: dict[tuple[str, int], dict[int, bytes]] = defaultdict(dict)
        self.complete: set[tuple[str, int]] = set()
        self.started: set[tuple[str, int]] = set()
        self.answered: set[tuple[str, int]] = set()
        self.last_seq: dict[tuple[str, int], int] = {}  # on this connection
        self.revision: dict[tuple[str, int], int] = defaultdict(int)

    def ack(self, resumed: bool = False) -> SessionInitAck:
        return SessionInitAck(
            session_id=self.sid,
            resume_token=f"t-{self.sid}",
            resumed=resumed or None,
            streaming=True,
            max_in_flight_utterances=3,
        )

    def tick(self) -> None:
        self.now += 0.05
        for d in self.s.deliveries():
            m = d.message
            index = getattr(m, "utterance_index", None)
            assert isinstance(index, int)
            if isinstance(m, AsrPartial):
                assert index not in self.finals, "a partial after the final answer"
                seen = self.partials[(index, m.session_id)]  # revisions count per session
                assert not seen or m.revision > seen[-1], "a stale partial was shown"
                seen.append(int(m.revision))
            else:
                assert isinstance(m, TranslationResult | Error | MissingResult)
                self.finals[index] += 1

    # --- the speaker -----------------------------------------------------------------------

    @rule()
    def say_whole(self) -> None:
        self.s.submit(PIECE * 2, now=self.now)
        self.said += 1
        self.tick()

    @rule()
    def start_talking(self) -> None:
        self.open.append(self.s.open_stream(now=self.now))
        self.said += 1
        self.tick()

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def talk(self, data: st.DataObject) -> None:
        local = data.draw(st.sampled_from(self.open))
        self.s.append_stream(local, PIECE, self.now)
        self.tick()

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def pause(self, data: st.DataObject) -> None:
        local = data.draw(st.sampled_from(self.open))
        self.open.remove(local)
        self.s.close_stream(local, self.now)
        self.tick()

    # --- the wire --------------------------------------------------------------------------

    @rule()
    def send(self) -> None:
        for m in self.s.utterances_to_send(self.now):
            key = (m.session_id, m.utterance_index)
            assert m.session_id == self.sid
            assert key not in self.answered, "sent for an answered index"
            self.started.add(key)
            if isinstance(m, Utterance):
                self.complete.add(key)
                continue
            assert isinstance(m, AudioChunk)
            expected = self.last_seq.get(key, -1) + 1
            assert m.seq in (0, expected), f"seq {m.seq} after {expected - 1}"
            self.last_seq[key] = m.seq
            held = self.seq_bytes[key]
            payload = m.payload.to_bytes()
            assert held.setdefault(m.seq, payload) == payload, "a seq changed its bytes"
            if m.is_final:
                self.complete.add(key)
        self.tick()

    def live(self, keys: set[tuple[str, int]]) -> list[tuple[str, int]]:
        return sorted(k for k in keys if k[0] == self.sid and k not in self.answered)

    @precondition(lambda self: self.live(self.complete))
    @rule(data=st.data())
    def answer(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(self.live(self.complete)))
        self.answered.add(key)
        self.s.received(
            TranslationResult(session_id=key[0], utterance_index=key[1], text_asr="x"), self.now
        )
        self.tick()

    @precondition(lambda self: self.live(self.started))
    @rule(data=st.data(), stale=st.booleans())
    def partial(self, data: st.DataObject, stale: bool) -> None:
        key = data.draw(st.sampled_from(self.live(self.started)))
        if not stale:
            self.revision[key] += 1
        self.s.received(
            AsrPartial(
                session_id=key[0],
                utterance_index=key[1],
                text="w",
                revision=self.revision[key],
            ),
            self.now,
        )
        self.tick()

    @precondition(lambda self: self.live(self.started - self.complete))
    @rule(data=st.data())
    def refuse_mid_stream(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(self.live(self.started - self.complete)))
        self.answered.add(key)
        self.s.received(
            Error(code="MESSAGE_TOO_LARGE", message="x", session_id=key[0], utterance_index=key[1]),
            self.now,
        )
        self.tick()

    @precondition(lambda self: self.live(self.started - self.complete))
    @rule(data=st.data())
    def rate_limit_an_open_stream(self, data: st.DataObject) -> None:
        """The scheduler refused its first chunk: not accepted, so later chunks get errors
        too (echoes, not answers); it comes again from seq 0."""
        key = data.draw(st.sampled_from(self.live(self.started - self.complete)))
        self.started.discard(key)
        for code in ("RATE_LIMITED", "INVALID_MESSAGE"):
            self.s.received(
                Error(code=code, message="x", session_id=key[0], utterance_index=key[1]),
                self.now,
            )
        self.now += 1.0  # past the backoff
        self.tick()

    @rule()
    def drop_and_resume(self) -> None:
        self.s.connection_lost(self.now)
        self.s.opened(self.ack(resumed=True), self.now)
        self.last_seq.clear()  # a new connection: every stream starts again from seq 0
        self.tick()

    @rule()
    def restart(self) -> None:
        self.s.connection_lost(self.now)
        assert self.s.refused(Error(code="INVALID_SESSION", message="gone"), self.now)
        self.sessions += 1
        self.sid = f"s{self.sessions}"
        self.s.opened(self.ack(), self.now)
        self.last_seq.clear()
        self.tick()

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def nothing_lost_nothing_twice(self) -> None:
        assert all(count == 1 for count in self.finals.values())
        assert len(self.finals) + self.s.unanswered == self.said

    @invariant()
    def the_byte_bound_adds_up(self) -> None:
        pending = [*self.s._queue, *self.s._in_flight.values()]
        assert self.s._unanswered_bytes == sum(o.reserved_bytes for o in pending)
        assert all(o.size_bytes <= o.reserved_bytes for o in pending)


StreamingSession.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_streaming_session_state_machine = StreamingSession.TestCase
