"""A test double of the scheduler that speaks the streaming protocol (a real WebSocket server in
the test's process): it grants streaming when asked, checks every `audio_chunk` (seq from 0
without gaps, nothing after `is_final`), sends an `asr_partial` for every `partial_every_ms`
of audio received, a repeat of each partial's revision (stale: a client must not show it),
the final `translation_result` at the final chunk, and one more partial after it (too late:
a client must not show it). Whole `utterance`s are answered at once. Scripted text: the
partial after n steps says `w1 ... wn`, all but the last word stable.

Failures on cue: `drop_after_chunks` closes the first connection once that many chunks came;
the client's resume is then granted (its streams kept, a chunk whose seq it already has is
dropped, as a scheduler does with a resent utterance in progress) or, with
`restart_on_drop`, refused with INVALID_SESSION as by a restarted scheduler, whose new
session `s2` starts from nothing."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from lingua_protocol import (
    AsrPartial,
    AudioChunk,
    Error,
    Message,
    SessionInit,
    SessionInitAck,
    TranslationResult,
    Utterance,
    parse_client_message,
)
from websockets.asyncio.server import ServerConnection, serve


@dataclass
class StreamState:
    next_seq: int = 0
    size_bytes: int = 0
    revision: int = 0
    closed: bool = False
    first_chunk_at: float = 0.0
    final_chunk_at: float = 0.0


@dataclass
class ScriptedStreamingScheduler:
    grant: bool = True
    partial_every_ms: int = 500
    port: int = 0
    chunks: list[AudioChunk] = field(default_factory=list)
    utterances: list[Utterance] = field(default_factory=list)
    binary_frames: int = 0
    violations: list[str] = field(default_factory=list)
    timeline: list[tuple[str, int, int]] = field(default_factory=list)
    """In order: ("partial", index, revision) sent, ("final_chunk", index, seq) received."""
    streams: dict[int, StreamState] = field(default_factory=dict)
    drop_after_chunks: int | None = None
    restart_on_drop: bool = False
    duplicates: int = 0
    session_id: str = "s1"
    sessions: int = 0

    async def handler(self, ws: ServerConnection) -> None:
        init = parse_client_message(await ws.recv())
        assert isinstance(init, SessionInit)
        if init.resume_token is not None and self.restart_on_drop:
            await ws.send(Error(code="INVALID_SESSION", message="unknown resume token").to_json())
            return
        if init.resume_token is None:  # a new session starts from nothing
            self.sessions += 1
            self.session_id = f"s{self.sessions}"
            self.streams = {}
        granted = self.grant and bool(init.enable_streaming_asr)
        await ws.send(
            SessionInitAck(
                session_id=self.session_id,
                resume_token=f"t{self.sessions}",
                resumed=init.resume_token is not None or None,
                binary_audio=bool(init.binary_audio),
                streaming=granted or None,
                partial_update_interval_ms=self.partial_every_ms if granted else None,
                max_stream_ms=30_000 if granted else None,
            ).to_json()
        )
        async for data in ws:
            self.binary_frames += isinstance(data, bytes)
            m = parse_client_message(data)
            if isinstance(m, AudioChunk):
                for reply in self.chunk(m):
                    await ws.send(reply.to_json())
                if (
                    self.drop_after_chunks is not None
                    and len(self.chunks) >= self.drop_after_chunks
                ):
                    self.drop_after_chunks = None
                    await ws.close()
                    return
            elif isinstance(m, Utterance):
                self.utterances.append(m)
                await ws.send(self.result(m.utterance_index, len(m.audio)).to_json())

    def chunk(self, m: AudioChunk) -> list[Message]:
        self.chunks.append(m)
        index = m.utterance_index
        s = self.streams.setdefault(index, StreamState(first_chunk_at=time.perf_counter()))
        if m.seq < s.next_seq:
            self.duplicates += 1  # resent after a resume: already held
            return []
        if s.closed or m.seq != s.next_seq:
            self.violations.append(f"index {index}: seq {m.seq}, expected {s.next_seq}")
            return []
        s.next_seq += 1
        s.size_bytes += len(m.payload)
        out: list[Message] = []
        step_bytes = 32 * self.partial_every_ms
        while s.size_bytes // step_bytes > s.revision:
            s.revision += 1
            p = self.partial(index, s.revision, s.size_bytes)
            out += [p, p.model_copy(update={"text": "STALE"})]
            self.timeline.append(("partial", index, s.revision))
        if m.is_final:
            s.closed = True
            s.final_chunk_at = time.perf_counter()
            self.timeline.append(("final_chunk", index, m.seq))
            late = self.partial(index, s.revision + 1, s.size_bytes).model_copy(
                update={"text": "LATE"}
            )
            out += [self.result(index, s.size_bytes), late]
        return out

    @staticmethod
    def words(size_bytes: int, step_ms: int) -> list[str]:
        return [f"w{k}" for k in range(1, max(1, size_bytes // (32 * step_ms)) + 1)]

    def partial(self, index: int, revision: int, size_bytes: int) -> AsrPartial:
        words = self.words(size_bytes, self.partial_every_ms)
        return AsrPartial(
            session_id=self.session_id,
            utterance_index=index,
            text=" ".join(words),
            stable_text=" ".join(words[:-1]),
            revision=revision,
            audio_ms=size_bytes // 32,
        )

    def result(self, index: int, size_bytes: int) -> TranslationResult:
        text = " ".join(self.words(size_bytes, self.partial_every_ms))
        return TranslationResult(
            session_id=self.session_id,
            utterance_index=index,
            text_asr=text,
            text_translated=text.upper(),
            node_id="scripted",
        )


@asynccontextmanager
async def running(sched: ScriptedStreamingScheduler) -> AsyncIterator[ScriptedStreamingScheduler]:
    async with serve(sched.handler, "127.0.0.1", 0, max_size=None) as server:
        sched.port = next(iter(server.sockets)).getsockname()[1]
        yield sched


def url(sched: ScriptedStreamingScheduler) -> str:
    return f"ws://127.0.0.1:{sched.port}/ws/session"
