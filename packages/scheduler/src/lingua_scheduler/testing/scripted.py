"""Test doubles that speak the protocol over real WebSockets: a scripted node and a scripted
client. For unit, integration and load tests only; a user never runs these.

`ScriptedNode` answers each `job_assign` with a deterministic result (`asr:<index>`,
`<tgt>:<index>`), after an optional hold that the test releases, so tests synchronise on
events rather than on sleeps. With `streams=N` it also holds N streaming jobs: it sends an
`asr_partial` for the audio of the assignment and for every `job_audio` (text
`partial:<index>:<seq>`, stable text `partial:<index>`), and the result after the final chunk
(or at once for a `stream_closed` assignment); `stream_audio` keeps what each job received.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any

from lingua_protocol import (
    AsrPartial,
    AudioChunk,
    AudioData,
    CapabilityByType,
    FeatureFlags,
    JobAck,
    JobAssign,
    JobAudio,
    JobCancel,
    JobResult,
    LanguageCapabilities,
    LanguagePair,
    Message,
    NodeHeartbeat,
    NodeRegister,
    NodeRegisterAck,
    PairingCodeRequest,
    ResourceUsage,
    SessionInit,
    Utterance,
    parse_scheduler_message,
    parse_server_message,
)
from websockets.asyncio.client import ClientConnection, connect


class ScriptedNode:
    """A test-double node. `hold=True` keeps results until `release()`; `ack=False` never acks."""

    def __init__(
        self,
        url: str,
        node_id: str,
        pairs: Iterable[tuple[str, str]] = (("en", "zh"), ("zh", "en")),
        *,
        max_jobs: int = 4,
        hold: bool = False,
        ack: bool = True,
        answer: bool = True,
        accept_public: bool = True,
        token: str | None = None,
        heartbeat_s: float = 1.0,
        binary: bool = False,
        tts_bytes: int = 0,
        register: dict[str, Any] | None = None,
        credential: str | None = None,
        streams: int = 0,
        partials: bool = True,
    ) -> None:
        self.url = url
        self.streams = streams
        self.partials = partials
        self.stream_jobs: dict[str, JobAssign] = {}  # open streaming jobs, by job id
        self.stream_audio: dict[str, bytearray] = {}  # all audio each streaming job received
        self.partials_sent = 0
        self.credential = credential  # presented at register; one handed in the ack is kept
        self.node_id = node_id
        self.pairs = list(pairs)
        self.max_jobs = max_jobs
        self.hold = hold
        self.ack = ack
        self.answer = answer
        self.accept_public = accept_public
        self.token = token
        self.heartbeat_s = heartbeat_s
        self.binary = binary
        self.tts_bytes = tts_bytes
        self.register_body = register
        self.received: list[Message] = []
        self.jobs: list[JobAssign] = []
        self.cancelled: list[str] = []
        self.job_event = asyncio.Event()
        self.held: list[JobAssign] = []
        self.answered = 0  # results sent
        self._changed = asyncio.Event()  # set on every message received and result sent
        self.ws: ClientConnection | None = None
        self.ack_message: Message | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()

    def register_message(self) -> NodeRegister:
        if self.register_body is not None:
            body = dict(self.register_body)
            if self.credential is not None:
                body["node_credential"] = self.credential
            return NodeRegister.model_validate(body)
        return NodeRegister(
            node_id=self.node_id,
            version="scripted-test-double",
            capability_schema_version="2.0",
            capability_by_type=[
                CapabilityByType(type=t, ready=True) for t in ("ASR", "NMT", "TTS")
            ],
            language_capabilities=LanguageCapabilities(
                supported_language_pairs=[LanguagePair(src=s, tgt=t) for s, t in self.pairs]
            ),
            max_concurrent_jobs=self.max_jobs,
            max_concurrent_streams=self.streams or None,
            features_supported=FeatureFlags(enable_streaming_asr=True) if self.streams else None,
            accept_public_jobs=self.accept_public,
            auth_token=self.token,
            binary_audio=self.binary,
            node_credential=self.credential,
        )

    async def start(self) -> Message:
        self.ws = await connect(self.url, max_size=None)
        await self.ws.send(self.register_message().to_json())
        self._tasks.append(asyncio.create_task(self._reader()))
        self.ack_message = await self.next_message()
        if isinstance(self.ack_message, NodeRegisterAck) and self.ack_message.node_credential:
            self.credential = self.ack_message.node_credential
        self._tasks.append(asyncio.create_task(self._heartbeats()))
        return self.ack_message

    async def next_message(self, timeout_s: float = 5.0) -> Message:
        async with asyncio.timeout(timeout_s):
            return await self._inbox.get()

    async def wait_jobs(self, count: int, timeout_s: float = 5.0) -> list[JobAssign]:
        async with asyncio.timeout(timeout_s):
            while len(self.jobs) < count:
                self.job_event.clear()
                await self.job_event.wait()
        return self.jobs

    async def wait_received(
        self, predicate: Callable[[Message], bool], timeout_s: float = 5.0
    ) -> Message:
        """The first message received (so far or from now on) that satisfies `predicate`."""
        async with asyncio.timeout(timeout_s):
            while True:
                found = next((m for m in self.received if predicate(m)), None)
                if found is not None:
                    return found
                self._changed.clear()
                await self._changed.wait()

    async def wait_answered(self, count: int, timeout_s: float = 5.0) -> None:
        """Until this node has sent `count` results."""
        async with asyncio.timeout(timeout_s):
            while self.answered < count:
                self._changed.clear()
                await self._changed.wait()

    async def sync(self, timeout_s: float = 5.0) -> None:
        """A round trip through the scheduler (a `pairing_code_request` and its answer): when
        it returns, the scheduler has handled every message this node sent before it, since it
        handles one connection's messages in order."""
        assert self.ws is not None
        before = len(self.received)
        await self.ws.send(PairingCodeRequest(node_id=self.node_id).to_json())
        async with asyncio.timeout(timeout_s):
            while not any(m.type == "pairing_code" for m in self.received[before:]):
                self._changed.clear()
                await self._changed.wait()

    async def release(self, order: Iterable[JobAssign] | None = None) -> None:
        jobs = list(order) if order is not None else list(self.held)
        for job in jobs:
            if job in self.held:
                self.held.remove(job)
            await self.send_result(job)

    async def send_result(self, job: JobAssign, **overrides: Any) -> None:
        assert self.ws is not None
        body: dict[str, Any] = {
            "job_id": job.job_id,
            "attempt_id": job.attempt_id,
            "node_id": self.node_id,
            "session_id": job.session_id,
            "utterance_index": job.utterance_index,
            "success": True,
            "text_asr": f"asr:{job.utterance_index}",
            "text_translated": f"{job.tgt_lang}:{job.utterance_index}",
            "processing_time_ms": 1.0,
        }
        if self.tts_bytes:
            body.update(
                tts_audio=AudioData.from_bytes(b"\x00\x01" * (self.tts_bytes // 2)),
                tts_format="pcm16",
                tts_sample_rate=22050,
            )
        body.update(overrides)
        result = JobResult.model_validate(body)
        await self.ws.send(result.to_frame() if self.binary else result.to_json())
        self.answered += 1
        self._changed.set()

    async def kill(self) -> None:
        """Vanish without a close handshake, like a crashed machine."""
        for task in self._tasks:
            task.cancel()
        if self.ws is not None:
            self.ws.transport.abort()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.ws is not None:
            await self.ws.close()

    async def _reader(self) -> None:
        assert self.ws is not None
        with contextlib.suppress(Exception):
            async for data in self.ws:
                message = parse_scheduler_message(data, verify_audio=False)  # as a real node
                self.received.append(message)
                self._changed.set()
                if isinstance(message, JobAssign):
                    await self._on_job(message)
                elif isinstance(message, JobAudio):
                    await self._on_audio(message)
                elif isinstance(message, JobCancel):
                    self.cancelled.append(message.job_id)
                    self.stream_jobs.pop(message.job_id, None)
                else:
                    await self._inbox.put(message)

    async def _on_job(self, job: JobAssign) -> None:
        assert self.ws is not None
        self.jobs.append(job)
        self.job_event.set()
        if self.ack:
            ack = JobAck(job_id=job.job_id, attempt_id=job.attempt_id, node_id=self.node_id)
            await self.ws.send(ack.to_json())
        if not self.answer:
            return
        if job.stream:
            self.stream_jobs[job.job_id] = job
            self.stream_audio[job.job_id] = bytearray(job.audio.to_bytes())
            if job.audio:
                await self._send_partial(job, job.next_seq - 1)
            if job.stream_closed:
                await self._finish(job)
            return
        await self._finish(job)

    async def _finish(self, job: JobAssign) -> None:
        self.stream_jobs.pop(job.job_id, None)
        if self.hold:
            self.held.append(job)
        else:
            await self.send_result(job)

    async def _on_audio(self, audio: JobAudio) -> None:
        job = self.stream_jobs.get(audio.job_id)
        if job is None:
            return  # a job this node does not hold (cancelled, finished): dropped, as a node does
        self.stream_audio[job.job_id] += audio.payload.to_bytes()
        await self._send_partial(job, audio.seq)
        if audio.is_final:
            await self._finish(job)

    async def _send_partial(self, job: JobAssign, seq: int) -> None:
        if not self.partials or self.ws is None:
            return
        audio_ms = len(self.stream_audio[job.job_id]) * 1000 // (2 * job.sample_rate)
        partial = AsrPartial(
            session_id=job.session_id,
            utterance_index=job.utterance_index,
            text=f"partial:{job.utterance_index}:{seq}",
            stable_text=f"partial:{job.utterance_index}",
            audio_ms=audio_ms,
            job_id=job.job_id,
            attempt_id=job.attempt_id,
            node_id=self.node_id,
        )
        await self.ws.send(partial.to_json())
        self.partials_sent += 1
        self._changed.set()

    async def _heartbeats(self) -> None:
        assert self.ws is not None
        while True:
            await asyncio.sleep(self.heartbeat_s)
            beat = NodeHeartbeat(
                node_id=self.node_id,
                timestamp=int(time.time() * 1000),
                resource_usage=ResourceUsage(cpu_percent=1.0, running_jobs=len(self.held)),
            )
            with contextlib.suppress(Exception):
                await self.ws.send(beat.to_json())


class ScriptedClient:
    """A test-double client session: send utterances, read what the scheduler sends back."""

    def __init__(
        self, url: str, src: str = "en", tgt: str = "zh", *, max_queue: int = 16, **init: Any
    ) -> None:
        """`init` goes into `session_init`; `max_queue` is how many unread messages the
        connection buffers before it stops reading the socket (1: a client that lags)."""
        self.url = url
        self.max_queue = max_queue
        self.init = SessionInit(src_lang=src, tgt_lang=tgt, **init)
        self.ws: ClientConnection | None = None
        self.session_id: str | None = None
        self.resume_token: str | None = None
        self.ack: Message | None = None

    async def start(self) -> Message:
        self.ws = await connect(self.url, max_size=None, max_queue=self.max_queue)
        await self.ws.send(self.init.to_json())
        self.ack = await self.recv()
        self.session_id = getattr(self.ack, "session_id", None)
        self.resume_token = getattr(self.ack, "resume_token", None)
        return self.ack

    async def send_raw(self, data: str | bytes) -> None:
        assert self.ws is not None
        await self.ws.send(data)

    async def utter(self, index: int, audio: bytes = b"\x00\x00" * 1600, **kw: Any) -> None:
        assert self.ws is not None
        assert self.session_id is not None
        message = Utterance(
            session_id=self.session_id,
            utterance_index=index,
            audio=AudioData.from_bytes(audio),
            **kw,
        )
        binary = bool(getattr(self.ack, "binary_audio", False))
        await self.ws.send(message.to_frame() if binary else message.to_json())

    async def chunk(
        self, index: int, seq: int, audio: bytes, *, is_final: bool = False, **kw: Any
    ) -> None:
        """One `audio_chunk` of utterance `index` (a session that asked for streaming)."""
        assert self.ws is not None
        assert self.session_id is not None
        message = AudioChunk(
            session_id=self.session_id,
            utterance_index=index,
            seq=seq,
            is_final=is_final,
            payload=AudioData.from_bytes(audio),
            **kw,
        )
        binary = bool(getattr(self.ack, "binary_audio", False))
        await self.ws.send(message.to_frame() if binary else message.to_json())

    async def recv(self, timeout_s: float = 5.0) -> Message:
        assert self.ws is not None
        async with asyncio.timeout(timeout_s):
            return parse_server_message(await self.ws.recv())

    async def recv_until(
        self, count: int, kinds: tuple[str, ...], timeout_s: float = 10.0
    ) -> list[Message]:
        """Read until `count` messages of the given types arrived; returns all of them in order."""
        got: list[Message] = []
        async with asyncio.timeout(timeout_s):
            while len(got) < count:
                message = await self.recv(timeout_s)
                if message.type in kinds:
                    got.append(message)
        return got

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
