"""The node's book of streaming jobs: which it holds, where each one's audio is, which ended.

Plain state, no audio and no I/O (the session asks it, `session.py` turns its answers into
actions). A stream is keyed like a job attempt, (job_id, attempt_id). Rules:

- at most `max_streams` at once; beyond that a `job_assign` with `stream` is refused with
  NODE_OVERLOADED (and NODE_UNAVAILABLE while the node drains, as for jobs);
- `job_audio` must come in `seq` order from the assignment's `next_seq`: a repeated `seq`
  (a resend) is dropped, a gap fails the job (INVALID_MESSAGE: audio went missing, and a
  transcript without it would be wrong without anyone knowing);
- audio for a stream the node does not hold (cancelled, finished, never assigned) and audio
  after the final chunk are dropped, as the protocol says;
- a cancelled stream ends at once and sends nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lingua_protocol import JobAssign, JobAudio

from .._jobs import Key


@dataclass
class Stream:
    job: JobAssign
    next_seq: int
    closed: bool = False
    """The final chunk arrived (or the assignment said `stream_closed`)."""


@dataclass(frozen=True, slots=True)
class Feed:
    """Pass this chunk to the stream; `is_final`: it ends the utterance."""

    key: Key
    is_final: bool


@dataclass(frozen=True, slots=True)
class Fail:
    """End the stream with a failed `job_result`."""

    key: Key
    code: str
    message: str


@dataclass
class StreamBook:
    max_streams: int
    streams: dict[Key, Stream] = field(default_factory=dict)
    done: int = 0
    failed: int = 0
    dropped_chunks: int = 0

    def admit(self, job: JobAssign, draining: bool) -> str | None:
        """None when the stream is taken, else the error code that says why not."""
        if draining:
            return "NODE_UNAVAILABLE"
        if len(self.streams) >= self.max_streams:
            return "NODE_OVERLOADED"
        key = (job.job_id, job.attempt_id)
        self.streams[key] = Stream(job, job.next_seq, closed=job.stream_closed)
        return None

    def audio(self, chunk: JobAudio) -> Feed | Fail | None:
        """What to do with a chunk; None: drop it."""
        key = (chunk.job_id, chunk.attempt_id)
        stream = self.streams.get(key)
        if stream is None or stream.closed or chunk.seq < stream.next_seq:
            self.dropped_chunks += 1
            return None
        if chunk.seq > stream.next_seq:
            return Fail(
                key,
                "INVALID_MESSAGE",
                f"job_audio seq {chunk.seq} arrived where {stream.next_seq} was expected: "
                "audio is missing",
            )
        stream.next_seq += 1
        stream.closed = chunk.is_final
        return Feed(key, chunk.is_final)

    def cancel(self, job_id: str, attempt_id: str | None) -> list[Key]:
        """The streams a `job_cancel` ends (all attempts of the job when it names none)."""
        hits = [k for k in self.streams if k[0] == job_id and attempt_id in (None, k[1])]
        for key in hits:
            del self.streams[key]
        return hits

    def finish(self, key: Key, success: bool) -> bool:
        """Forget the stream; True when its result should be sent (it was still held)."""
        if self.streams.pop(key, None) is None:
            return False
        if success:
            self.done += 1
        else:
            self.failed += 1
        return True

    def holds(self, key: Key) -> bool:
        return key in self.streams

    def drop_all(self) -> list[Key]:
        """The connection is gone: the scheduler gives these utterances to other nodes."""
        keys = list(self.streams)
        self.streams.clear()
        return keys

    @property
    def idle(self) -> bool:
        return not self.streams
