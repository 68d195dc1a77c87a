"""The client's side of a session as plain state: no sockets, no sleeping, `now` passed in.

What it decides (the socket loop in `connection.py` only carries it out):

- **numbering**: every utterance the user says gets a *local index* (0, 1, 2, ... for the
  whole run, what captions and `--file` rows show) and, when it is sent, a *wire index* in the
  current scheduler session. The two are equal until a scheduler restart forces a new session;
  then everything unanswered is sent again under new wire indexes (0, 1, ... of the new
  session) and answers are mapped back, so captions stay right.
- **unanswered / answered**: an utterance is kept until its final answer (a
  `translation_result`, a `missing_result` or an `error` for its index); a final answer that
  arrives twice (a resume replay) is passed on once.
- **resume**: after a dropped connection the session is resumed with its `resume_token` and
  the last contiguous wire index answered; whatever is still in flight is sent again (the
  scheduler ignores resends of work in progress and replays answers it already has). A resume
  the scheduler refuses (`INVALID_SESSION`, `SESSION_CLOSED`: it restarted, or the resume
  grace passed) opens a new session at once.
- **flow control**: the `session_init_ack` may state `max_in_flight_utterances` and
  `max_in_flight_bytes`; utterances beyond that window wait here, in order, and go out as
  answers come back (None: no limit). A `RATE_LIMITED` error for an index is not a failure: the
  same utterance is sent again under the same wire index after a backoff.
- **nodes coming back**: after a scheduler restart the nodes re-register on their own
  backoff, often after the client; until they do, the new scheduler answers
  `NO_AVAILABLE_NODE`. For `restart_grace_s` (default 30 s) after a new session replaced a lost
  one, that answer is not shown: the utterance is sent again after a backoff under a new wire
  index (the scheduler has closed the old one). Outside that window, or on the first session,
  `NO_AVAILABLE_NODE` is the answer (a pair nobody serves).
- **backoff** between connection attempts, with jitter from an injected `random.Random`.
- **streaming**: an utterance may be opened while the speaker still talks (`open_stream`,
  `append_stream`, `close_stream`). When the session's ack granted `streaming` and the
  utterance is still being spoken when the window lets it go, it goes as `audio_chunk`s (seq
  from 0, the last with `is_final`); the first chunk opens it and counts in the window like an
  utterance, later chunks of an open stream are never held back (the scheduler counted the
  stream when it opened, and holding them would only stall its partials). One that is
  already finished when its turn comes (it waited for a connection, the window or a retry)
  goes whole as an `utterance`, and so does every stream when the ack did not grant streaming
  (a v0.1 scheduler: no partials, nothing else changes). `asr_partial`s for an index get its
  local index and are passed on only when their `revision` is above the last one shown and
  the index has no final answer yet.
- **streams across failures**: a *resume* re-sends a stream's chunks from seq 0 under the
  same index, each seq with the same bytes as before (the scheduler keeps the chunks it has
  and drops a seq it already holds, as it drops a resent `utterance` in progress); after a
  *scheduler restart* (a new session) an unanswered stream the speaker has finished goes
  whole as an `utterance` under its new index, and one still being spoken is streamed again
  from its first byte.

Bound: the audio of all unanswered utterances together is capped at `max_unanswered_bytes`
(default 16 MiB, about eight minutes of speech at 32 KB/s, what a long outage can pile up).
An utterance beyond it, or one larger than the scheduler's byte window on its own, ends at
once in an `error` with code `MESSAGE_TOO_LARGE` for its local index: never a silent drop.
A stream reserves `max_stream_bytes` of that bound when it opens (default 30 s of 16 kHz
pcm16, less when the ack's `max_stream_ms` is smaller) and releases what it did not use when
it closes; `append_stream` refuses audio beyond the reservation (False: the caller cuts there
and opens the next utterance), so a stream is never cut short silently.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

from lingua_protocol import (
    AsrPartial,
    AudioChunk,
    AudioData,
    AudioFormat,
    Error,
    ErrorCode,
    Message,
    PipelineConfig,
    SessionInit,
    SessionInitAck,
    TranslationResult,
    Utterance,
)

from ._outgoing import Backoff, Delivery, Outgoing, final_index
from ._stream_upload import (
    DEFAULT_MAX_CHUNK_BYTES,
    DEFAULT_MIN_CHUNK_BYTES,
    ChunkSlice,
    next_slices,
)

DEFAULT_MAX_UNANSWERED_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_STREAM_BYTES = 30 * 16000 * 2
"""The longest stream the client holds: 30 s of 16 kHz pcm16 (the ack may state less)."""
DEFAULT_RESTART_GRACE_S = 30.0
RESUME_REFUSALS = frozenset({ErrorCode.INVALID_SESSION.value, ErrorCode.SESSION_CLOSED.value})
__all__ = ["Backoff", "ClientSession", "Delivery", "Outgoing", "final_index"]


@dataclass
class ClientSession:
    """The session state machine. Events: `submit`, `opened`, `refused`, `connection_lost`,
    `connect_failed`, `received`. Outputs: `opening_message()`, `utterances_to_send(now)`,
    `deliveries()`, `reconnect_delay_s()`, `next_deadline()`. Never raises on peer input."""

    init: SessionInit
    backoff: Backoff = field(default_factory=Backoff)
    rng: random.Random = field(default_factory=random.Random)
    max_unanswered_bytes: int = DEFAULT_MAX_UNANSWERED_BYTES
    restart_grace_s: float = DEFAULT_RESTART_GRACE_S
    max_stream_bytes: int = DEFAULT_MAX_STREAM_BYTES
    min_chunk_bytes: int = DEFAULT_MIN_CHUNK_BYTES
    max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES

    session_id: str | None = None
    resume_token: str | None = None
    binary_audio: bool = False
    assigned_node: str | None = None
    max_in_flight_utterances: int | None = None
    max_in_flight_bytes: int | None = None
    streaming: bool = False
    """The current session's ack granted streaming: open utterances may go as chunks."""
    stream_limit_bytes: int | None = None
    """The ack's `max_stream_ms` in pcm16 bytes at 16 kHz (None: not stated)."""
    connected: bool = False
    sessions_opened: int = 0
    failures: int = 0
    failed: Error | None = None
    """Set when the scheduler refused us for good (bad pairing code, ...): nothing more goes."""

    _next_local: int = 0
    _next_wire: int = 0
    _queue: deque[Outgoing] = field(default_factory=deque)
    _in_flight: dict[int, Outgoing] = field(default_factory=dict)
    _answered_up_to: int = -1
    _answered_above: set[int] = field(default_factory=set)
    _unanswered_bytes: int = 0
    _open_streams: dict[int, Outgoing] = field(default_factory=dict)
    _out: list[Delivery] = field(default_factory=list)
    _nodes_return_until: float = float("-inf")

    # --- queries ---------------------------------------------------------------------------

    @property
    def unanswered(self) -> int:
        """Utterances said and not yet finally answered (queued here or in flight)."""
        return len(self._queue) + len(self._in_flight)

    @property
    def queued(self) -> int:
        """Utterances waiting here: for the window, a retry, or a connection."""
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        return sum(1 for o in self._in_flight.values() if not o.resend)

    def opening_message(self) -> SessionInit:
        """The `session_init` to send on a fresh connection: a resume when we have a token."""
        if self.resume_token is None:
            return self.init
        update: dict[str, object] = {"resume_token": self.resume_token}
        if self._answered_up_to >= 0:
            update["last_received_index"] = self._answered_up_to
        return self.init.model_copy(update=update)

    def reconnect_delay_s(self) -> float:
        """How long to wait before the next connection attempt."""
        return self.backoff.delay_s(self.failures, self.rng)

    def next_deadline(self, now: float = float("-inf")) -> float | None:
        """When `utterances_to_send` may have something new without any other event: a
        retry's backoff ending after `now`. None when only an event can change anything (an
        answer freeing the window, more audio, a stream's end), so a writer waits for that
        instead of waking in a loop."""
        if not self.connected or not self._queue:
            return None
        at = self._queue[0].not_before
        return at if at > now else None

    def deliveries(self) -> list[Delivery]:
        """Messages for the user interface, in order; each is returned once."""
        out, self._out = self._out, []
        return out

    # --- events ----------------------------------------------------------------------------

    def submit(
        self,
        audio: bytes,
        *,
        now: float,
        audio_format: AudioFormat = "pcm16",
        sample_rate: int = 16000,
        manual_cut: bool = False,
        pipeline: PipelineConfig | None = None,
        spoken_at: float | None = None,
    ) -> int:
        """The user said something: returns its local index. It goes out with the next
        `utterances_to_send` that the connection and the window allow."""
        local = self._next_local
        self._next_local += 1
        if self.failed is not None:
            self._fail_local(local, self.failed.code, f"session ended: {self.failed.message}")
            return local
        if self._unanswered_bytes + len(audio) > self.max_unanswered_bytes:
            self._fail_local(
                local,
                ErrorCode.MESSAGE_TOO_LARGE,
                f"the client already holds {self._unanswered_bytes} bytes of unanswered "
                f"speech (limit {self.max_unanswered_bytes}); this utterance was not sent",
            )
            return local
        self._unanswered_bytes += len(audio)
        self._queue.append(
            Outgoing(
                local,
                audio,
                audio_format,
                sample_rate,
                manual_cut,
                pipeline,
                now if spoken_at is None else spoken_at,
                reserved_bytes=len(audio),
            )
        )
        return local

    def open_stream(
        self,
        *,
        now: float,
        sample_rate: int = 16000,
        pipeline: PipelineConfig | None = None,
    ) -> int:
        """The speaker started an utterance that is sent while they talk; returns its local
        index. Audio follows with `append_stream`, the end with `close_stream`. It reserves
        the longest stream's size of the unanswered bound; beyond the bound it ends at once
        in MESSAGE_TOO_LARGE for its index (and `append_stream` then refuses its audio)."""
        local = self._next_local
        self._next_local += 1
        if self.failed is not None:
            self._fail_local(local, self.failed.code, f"session ended: {self.failed.message}")
            return local
        reserve = self.stream_reserve_bytes
        if self._unanswered_bytes + reserve > self.max_unanswered_bytes:
            self._fail_local(
                local,
                ErrorCode.MESSAGE_TOO_LARGE,
                f"the client already holds {self._unanswered_bytes} bytes of unanswered "
                f"speech (limit {self.max_unanswered_bytes}); this utterance was not sent",
            )
            return local
        self._unanswered_bytes += reserve
        item = Outgoing(
            local,
            bytearray(),  # grows in place as the speaker talks
            "pcm16",
            sample_rate,
            False,
            pipeline,
            now,
            closed=False,
            reserved_bytes=reserve,
        )
        self._open_streams[local] = item
        self._queue.append(item)
        return local

    def stream_is_open(self, local: int) -> bool:
        """True while `local` is a stream that takes audio: opened, not closed, not answered
        early by an error, its session not failed."""
        return local in self._open_streams

    @property
    def stream_reserve_bytes(self) -> int:
        """The most audio one stream may hold now: the client's limit or the ack's."""
        limit = self.stream_limit_bytes
        return self.max_stream_bytes if limit is None else min(self.max_stream_bytes, limit)

    def append_stream(self, local: int, pcm16: bytes, now: float) -> bool:
        """More audio of an open stream. False (nothing taken): the stream is not open (it
        ended, or its session failed) or this audio would pass its reservation; the caller
        closes it there and opens the next utterance for the rest."""
        item = self._open_streams.get(local)
        if item is None or item.size_bytes + len(pcm16) > item.reserved_bytes:
            return False
        assert isinstance(item.audio, bytearray)
        item.audio += pcm16
        return True

    def close_stream(
        self, local: int, now: float, *, manual_cut: bool = False, spoken_at: float | None = None
    ) -> None:
        """The speaker finished this utterance (`spoken_at`: when, for its latency; default
        `now`). Its final chunk (or the whole utterance) goes with the next send."""
        item = self._open_streams.pop(local, None)
        if item is None:
            return
        item.closed = True
        item.manual_cut = manual_cut
        item.spoken_at = now if spoken_at is None else spoken_at
        self._unanswered_bytes -= item.reserved_bytes - item.size_bytes
        item.reserved_bytes = item.size_bytes

    def opened(self, ack: SessionInitAck, now: float) -> None:
        """The scheduler accepted our `session_init` (new or resumed)."""
        resumed = self.resume_token is not None and ack.session_id == self.session_id
        if not resumed:
            if self.sessions_opened:  # a restart: the nodes are re-registering meanwhile
                self._nodes_return_until = now + self.restart_grace_s
            self._start_new_numbering()
        else:
            done = ack.last_delivered_index
            for o in self._in_flight.values():
                o.resend = done is None or o.wire_index is None or o.wire_index > done
        self.session_id = ack.session_id
        self.resume_token = ack.resume_token or self.resume_token
        self.binary_audio = bool(ack.binary_audio)
        self.assigned_node = ack.assigned_node_id or self.assigned_node
        self.max_in_flight_utterances = ack.max_in_flight_utterances
        self.max_in_flight_bytes = ack.max_in_flight_bytes
        self.streaming = bool(ack.streaming) and bool(self.init.enable_streaming_asr)
        self.stream_limit_bytes = (
            None if ack.max_stream_ms is None else ack.max_stream_ms * 16000 * 2 // 1000
        )
        self.connected = True
        self.failures = 0
        self.sessions_opened += 1

    def refused(self, error: Error, now: float) -> bool:
        """The scheduler answered `session_init` with an error. True: connect again at once
        (a refused resume becomes a new session); False: the session has ended for good and
        every unanswered utterance has got an error."""
        self.connected = False
        if self.resume_token is not None and error.code in RESUME_REFUSALS:
            self.resume_token = None  # the next `session_init` opens a new session
            return True
        self.failed = error
        for o in sorted(
            [*self._queue, *self._in_flight.values()], key=lambda item: item.local_index
        ):
            self._fail_local(o.local_index, error.code, f"session refused: {error.message}")
        self._queue.clear()
        self._in_flight.clear()
        self._open_streams.clear()
        self._unanswered_bytes = 0
        return False

    def connect_failed(self, now: float) -> None:
        """A connection attempt failed (refused, timed out, handshake error)."""
        self.connected = False
        self.failures += 1

    def connection_lost(self, now: float) -> None:
        """The open connection closed: everything in flight waits for the resume."""
        self.connected = False

    def received(self, message: Message, now: float) -> None:
        """A parsed message from the scheduler on the open connection."""
        session_id = getattr(message, "session_id", None)
        if session_id is not None and session_id != self.session_id:
            return  # left over from a session we no longer have
        if (
            isinstance(message, TranslationResult)
            and message.node_id
            and message.speaker_session_id in (None, message.session_id)
        ):
            self.assigned_node = message.node_id
        if isinstance(message, AsrPartial) and message.speaker_session_id in (
            None,
            message.session_id,
        ):
            self._partial(message, now)
            return
        wire = final_index(message, self.session_id)
        if wire is None:
            self._out.append(Delivery(self._to_local(message)))
            return
        if self._is_answered(wire):
            return  # a replay of something already passed on
        item = self._in_flight.get(wire) or self._waiting_retry(wire)
        if isinstance(message, Error) and item is not None and item.refused_stream:
            return  # about a chunk that followed a refused first chunk: not an answer
        if (
            isinstance(message, Error)
            and message.code == ErrorCode.RATE_LIMITED
            and item is not None
            and self.failed is None
        ):
            self._retry_later(item, now)
            return
        self._mark_answered(wire)
        if (
            isinstance(message, Error)
            and message.code == ErrorCode.NO_AVAILABLE_NODE
            and item is not None
            and self.failed is None
            and now < self._nodes_return_until
        ):
            self._in_flight.pop(wire, None)
            item.wire_index = None  # the scheduler answered that index: a new one next time
            self._retry_later(item, now)
            return
        if item is None:
            return  # an answer for a wire index we never sent: nothing to show it against
        self._in_flight.pop(wire, None)
        if item in self._queue:
            self._queue.remove(item)
        self._open_streams.pop(item.local_index, None)  # answered early (an error): no more
        self._unanswered_bytes -= item.reserved_bytes
        latency = (now - item.spoken_at) * 1000
        self._out.append(Delivery(self._relabel(message, item.local_index), latency))

    def utterances_to_send(self, now: float) -> list[Utterance | AudioChunk]:
        """What to send now: resends after a resume first, then the chunks due for streams
        in flight, then queued utterances in order while the window allows (an open stream
        as its first chunks, a finished one whole). Each admitted utterance counts as in
        flight from its first message."""
        if not self.connected or self.session_id is None:
            return []
        out: list[Utterance | AudioChunk] = []
        for o in self._in_flight.values():
            if o.resend and o.as_chunks:
                o.restart_upload()  # which chunks arrived is unknown: all again, same seqs
            elif o.resend:
                out.append(self._message(o))
            o.resend = False
        for o in self._in_flight.values():
            if o.as_chunks:
                out += self._chunks(o, now)
        while self._queue:
            head = self._queue[0]
            if head.not_before > now:
                break
            if not head.closed and not self._streamable(head):
                break  # it goes whole once the speaker has finished
            limit = self.max_in_flight_bytes
            if limit is not None and head.size_bytes > limit:
                self._queue.popleft()
                self._drop_too_large(head, limit)
                continue
            if not self._window_allows(head):
                break
            self._queue.popleft()
            if head.wire_index is None:
                head.wire_index = self._next_wire
                self._next_wire += 1
            self._in_flight[head.wire_index] = head
            head.refused_stream = False
            head.restart_upload()
            head.as_chunks = not head.closed
            if head.as_chunks:
                out += self._chunks(head, now)
            else:
                out.append(self._message(head))
        return out

    def _streamable(self, o: Outgoing) -> bool:
        """Chunks where streaming was granted; an utterance's own pipeline (speech off)
        travels on its first chunk."""
        return self.streaming

    def _chunks(self, o: Outgoing, now: float) -> list[AudioChunk]:
        assert o.wire_index is not None
        assert self.session_id is not None
        ends = o.chunk_ends
        last = len(ends) - 1
        slices = [  # sent before (a resume): the same bytes under the same seq
            ChunkSlice(
                seq, ends[seq - 1] if seq else 0, ends[seq], seq == last and o.final_recorded
            )
            for seq in range(o.next_seq, len(ends))
        ]
        fresh = next_slices(
            total_bytes=o.size_bytes,
            sent_bytes=ends[-1] if ends else 0,
            next_seq=len(ends),
            closed=o.closed,
            final_sent=o.final_recorded,
            min_chunk_bytes=self.min_chunk_bytes,
            max_chunk_bytes=self.max_chunk_bytes,
        )
        ends += [c.end for c in fresh]
        o.final_recorded = o.final_recorded or any(c.is_final for c in fresh)
        slices += fresh
        out = [
            AudioChunk(
                session_id=self.session_id,
                utterance_index=o.wire_index,
                seq=c.seq,
                is_final=c.is_final,
                payload=AudioData.from_bytes(bytes(o.audio[c.start : c.end])),
                sample_rate=o.sample_rate,
                pipeline=o.pipeline if c.seq == 0 else None,
            )
            for c in slices
        ]
        o.next_seq = len(ends)
        if slices and o.first_sent_at is None:
            o.first_sent_at = now
        return out

    def _partial(self, message: AsrPartial, now: float) -> None:
        """Pass on a partial of one of our utterances in flight, newest revision only."""
        wire = int(message.utterance_index)
        item = self._in_flight.get(wire)
        if item is None or self._is_answered(wire) or message.revision <= item.last_revision:
            return  # stale, after the final answer, or for an index we do not have
        item.last_revision = int(message.revision)
        since = None if item.first_sent_at is None else (now - item.first_sent_at) * 1000
        self._out.append(Delivery(self._relabel(message, item.local_index), t_ms=since))

    # --- internals -------------------------------------------------------------------------

    def _window_allows(self, item: Outgoing) -> bool:
        count = len(self._in_flight)
        if self.max_in_flight_utterances is not None and count >= self.max_in_flight_utterances:
            return False
        limit = self.max_in_flight_bytes
        if limit is None:
            return True
        used = sum(o.size_bytes for o in self._in_flight.values())
        return used + item.size_bytes <= limit

    def _start_new_numbering(self) -> None:
        """A new scheduler session: every unanswered utterance goes again, renumbered from 0
        in the order the user said them."""
        pending = sorted(
            [*self._in_flight.values(), *self._queue], key=lambda item: item.local_index
        )
        for o in pending:
            o.wire_index = None
            o.resend = False
            o.not_before = 0.0
            o.as_chunks = False
            o.refused_stream = False
            o.last_revision = -1  # revisions count per session
            o.restart_upload()
        self._in_flight.clear()
        self._queue = deque(pending)
        self._next_wire = 0
        self._answered_up_to = -1
        self._answered_above.clear()

    def _retry_later(self, item: Outgoing, now: float) -> None:
        if item.wire_index is not None:
            self._in_flight.pop(item.wire_index, None)
        item.resend = False
        item.refused_stream = item.as_chunks
        item.as_chunks = False
        item.restart_upload()
        item.not_before = now + self.backoff.delay_s(item.rate_limited, self.rng)
        item.rate_limited += 1
        if item not in self._queue:
            self._queue.appendleft(item)
            self._queue = deque(sorted(self._queue, key=lambda o: o.local_index))

    def _waiting_retry(self, wire: int) -> Outgoing | None:
        for o in self._queue:
            if o.wire_index == wire:
                return o
        return None

    def _drop_too_large(self, item: Outgoing, limit: int) -> None:
        self._unanswered_bytes -= item.reserved_bytes
        self._open_streams.pop(item.local_index, None)
        if item.wire_index is not None:
            self._mark_answered(item.wire_index)
        self._fail_local(
            item.local_index,
            ErrorCode.MESSAGE_TOO_LARGE,
            f"utterance of {item.size_bytes} bytes is larger than the session's in-flight "
            f"window of {limit} bytes",
        )

    def _is_answered(self, wire: int) -> bool:
        return wire <= self._answered_up_to or wire in self._answered_above

    def _mark_answered(self, wire: int) -> None:
        self._answered_above.add(wire)
        while self._answered_up_to + 1 in self._answered_above:
            self._answered_up_to += 1
            self._answered_above.discard(self._answered_up_to)

    def _to_local(self, message: Message) -> Message:
        """Non-final messages about one of our utterances (partial transcripts) get its local
        index; everything else passes unchanged."""
        wire = getattr(message, "utterance_index", None)
        if not isinstance(wire, int) or isinstance(message, TranslationResult):
            return message
        item = self._in_flight.get(wire)
        return message if item is None else self._relabel(message, item.local_index)

    @staticmethod
    def _relabel(message: Message, local_index: int) -> Message:
        if getattr(message, "utterance_index", None) == local_index:
            return message
        return message.model_copy(update={"utterance_index": local_index})

    def _fail_local(self, local: int, code: str, text: str) -> None:
        self._out.append(
            Delivery(
                Error(code=code, message=text, session_id=self.session_id, utterance_index=local)
            )
        )

    def _message(self, o: Outgoing) -> Utterance:
        assert o.wire_index is not None
        assert self.session_id is not None
        return Utterance(
            session_id=self.session_id,
            utterance_index=o.wire_index,
            manual_cut=o.manual_cut,
            pipeline=o.pipeline,
            audio=AudioData.from_bytes(bytes(o.audio)),
            audio_format=o.audio_format,
            sample_rate=o.sample_rate,
        )
