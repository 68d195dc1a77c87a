"""`--file` mode: send WAV files (whole, or cut by VAD with `--vad`) and print each answer as
text or JSON lines. For scripts, tests and the demo; exits non-zero when anything failed.

With `--stream` the files are played in real time, `FILE_BLOCK_MS` at a time, as a speaker
would say them: each utterance goes as `audio_chunk`s while it is "spoken" (the whole file as
one utterance, or the VAD's cuts with `--vad`, pauses included), each `asr_partial` is printed
as it comes, and `latency_ms` counts from the end of the utterance's audio."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from lingua_protocol import (
    AsrPartial,
    Error,
    Message,
    MissingResult,
    PipelineConfig,
    SessionInit,
    TranslationResult,
    float32_to_pcm16,
    pcm16_wav_bytes,
    read_wav,
    to_mono_16k,
)

from ._connection import SchedulerUnreachable, SessionConnection, SessionRefused
from ._cutter import StreamEvent
from ._scheduler_url import BadSchedulerUrl, check_scheduler_url

FILE_BLOCK_MS = 100
"""`--stream`: how much audio is handed over at each real-time step (the chunk length)."""


class UnreadableAudio(Exception):
    """A `--file` input that is neither a WAV we can read nor audio PyAV can decode."""


@dataclass
class FileRun:
    out: TextIO
    as_json: bool
    save_tts: Path | None
    origin: dict[int, str] = field(default_factory=dict)
    failures: int = 0
    conn: SessionConnection | None = None

    def on_message(self, message: Message) -> None:
        if isinstance(message, TranslationResult):
            self._result(message)
        elif isinstance(message, AsrPartial):
            self._partial(message)
        elif isinstance(message, MissingResult | Error):
            self._failure(message)

    def _result(self, r: TranslationResult) -> None:
        latency = self.conn.latency_ms(r.utterance_index) if self.conn else None
        row: dict[str, Any] = {
            "utterance_index": r.utterance_index,
            "file": self.origin.get(r.utterance_index),
            "text_asr": r.text_asr,
            "text_translated": r.text_translated,
            "latency_ms": round(latency, 1) if latency is not None else None,
            "node_id": r.node_id,
            "service_timings": r.service_timings.model_dump(exclude_none=True)
            if r.service_timings
            else None,
        }
        if r.extra is not None and r.extra.reason:
            row["reason"] = r.extra.reason
        if r.tts_audio is not None and len(r.tts_audio) and r.tts_sample_rate:
            row["tts_sample_rate"] = r.tts_sample_rate
            row["tts_seconds"] = round(len(r.tts_audio) / 2 / r.tts_sample_rate, 2)
            if self.save_tts is not None:
                self.save_tts.mkdir(parents=True, exist_ok=True)
                path = self.save_tts / f"utterance-{r.utterance_index:03d}.wav"
                path.write_bytes(pcm16_wav_bytes(r.tts_audio.to_bytes(), r.tts_sample_rate))
                row["tts_file"] = str(path)
        if self.as_json:
            print(json.dumps(row, ensure_ascii=False), file=self.out, flush=True)
        else:
            ms = f"{row['latency_ms']:.0f} ms" if row["latency_ms"] is not None else "?"
            print(
                f"[{r.utterance_index}] {r.text_asr!s}\n    -> {r.text_translated!s}  ({ms}, "
                f"{r.node_id})",
                file=self.out,
                flush=True,
            )

    def _partial(self, p: AsrPartial) -> None:
        if p.speaker_session_id not in (None, p.session_id):
            return  # another room member's words: --file shows only its own
        t_ms = self.conn.partial_t_ms() if self.conn else None
        row: dict[str, Any] = {
            "utterance_index": p.utterance_index,
            "partial": True,
            "revision": p.revision,
            "text": p.text,
            "stable_text": p.stable_text,
            "t_ms": round(t_ms, 1) if t_ms is not None else None,
        }
        if self.as_json:
            print(json.dumps(row, ensure_ascii=False), file=self.out, flush=True)
        else:
            print(f"[{p.utterance_index}] … {p.text}", file=self.out, flush=True)

    def _failure(self, m: MissingResult | Error) -> None:
        self.failures += 1
        if isinstance(m, MissingResult):
            row = {
                "utterance_index": m.utterance_index,
                "error": "MISSING_RESULT",
                "message": m.reason,
            }
        else:
            row = {"utterance_index": m.utterance_index, "error": m.code, "message": m.message}
        row["file"] = (
            self.origin.get(row["utterance_index"]) if row["utterance_index"] is not None else None
        )  # type: ignore[index]
        if self.as_json:
            print(json.dumps(row, ensure_ascii=False), file=self.out, flush=True)
        else:
            print(
                f"[{row['utterance_index']}] error {row['error']}: {row['message']}",
                file=self.out,
                flush=True,
            )


def read_audio_16k(path: Path) -> np.ndarray:
    """16 kHz mono float32 from a 16-bit PCM WAV (read directly) or anything else PyAV
    decodes: 24-bit or float WAV, FLAC, MP3, Ogg, ... Raises `UnreadableAudio`."""
    try:
        samples, rate = read_wav(path)
        return to_mono_16k(samples, rate)
    except (wave.Error, EOFError, ValueError):
        pass  # not plain PCM16 WAV: let FFmpeg try
    import av

    chunks: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise UnreadableAudio(f"{path}: no audio stream in this file")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)
            for frame in container.decode(container.streams.audio[0]):
                chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise UnreadableAudio(
            f"{path}: not a WAV or audio file that can be decoded ({exc})"
        ) from exc
    if not chunks:
        raise UnreadableAudio(f"{path}: the audio stream is empty")
    return np.concatenate(chunks).astype(np.float32)


def load_pieces(path: Path, use_vad: bool) -> list[np.ndarray]:
    audio = read_audio_16k(path)
    if not use_vad:
        return [audio]
    from ._cutter import UtteranceCutter
    from ._vad import SileroStream

    cutter = UtteranceCutter(SileroStream())
    pieces = [c.audio for c in cutter.feed(np.concatenate([audio, np.zeros(16000, np.float32)]))]
    return pieces


async def run_files(
    url: str,
    files: list[Path],
    *,
    src: str,
    tgt: str,
    as_json: bool = False,
    save_tts: Path | None = None,
    use_tts: bool = True,
    use_vad: bool = False,
    pairing_code: str | None = None,
    timeout_s: float = 300.0,
    out: TextIO = sys.stdout,
    sequential: bool = False,
    max_reconnects: int | None = 20,
    stream: bool = False,
    stream_speed: float = 1.0,
) -> int:
    """`sequential`: wait for each answer before sending the next utterance, like a speaker
    who pauses; latencies then measure one utterance, not a queue. The session keeps within
    the scheduler's flow-control window (the rest waits here) and survives a scheduler restart
    (`max_reconnects` consecutive failed attempts, about three minutes with backoff, end it).
    `stream`: play each file in real time as chunks (see the module docstring);
    `stream_speed` > 1 plays faster than real time (tests of the pacing logic)."""
    run = FileRun(out, as_json, save_tts)
    init = SessionInit(
        src_lang=src,
        tgt_lang=tgt,
        pairing_code=pairing_code,
        pipeline=PipelineConfig(use_tts=use_tts),
        enable_streaming_asr=True if stream else None,
    )
    conn = SessionConnection(url, init, run.on_message, max_reconnects=max_reconnects)
    run.conn = conn
    try:
        await conn.start()
    except SessionRefused as exc:
        print(f"the scheduler refused the session: {exc}", file=sys.stderr)
        return 1
    except SchedulerUnreachable as exc:
        print(str(exc), file=sys.stderr)
        return 2
    try:
        for path in files:
            if stream:
                try:
                    audio = await asyncio.to_thread(read_audio_16k, path)
                except UnreadableAudio as exc:
                    print(str(exc), file=sys.stderr)
                    return 2
                for index in await stream_in_real_time(conn, audio, use_vad, stream_speed):
                    run.origin[index] = path.name
                if sequential:
                    await conn.drained(timeout_s)
                continue
            try:
                pieces = await asyncio.to_thread(load_pieces, path, use_vad)
            except UnreadableAudio as exc:
                print(str(exc), file=sys.stderr)
                return 2
            for piece in pieces:
                index = await conn.send_audio(
                    float32_to_pcm16(piece),
                    spoken_until=time.perf_counter(),
                )
                run.origin[index] = path.name
                if sequential:
                    await conn.drained(timeout_s)
        await conn.drained(timeout_s)
    except TimeoutError:
        print(f"gave up waiting: {conn.unanswered} utterances unanswered", file=sys.stderr)
        return 1
    finally:
        await conn.close()
    if conn.unanswered:
        print(f"connection lost: {conn.unanswered} utterances unanswered", file=sys.stderr)
        return 1
    return 1 if run.failures else 0


async def stream_in_real_time(
    conn: SessionConnection, audio: np.ndarray, use_vad: bool, speed: float = 1.0
) -> list[int]:
    """Hand `audio` over `FILE_BLOCK_MS` at a time at the pace it would be spoken; returns
    the local indexes of the utterances it became. Without VAD the whole file is one
    utterance, opened with its first block; with it, the VAD opens and closes utterances
    as it hears them (1 s of silence follows the file, as in whole mode, to end the last)."""
    from ._live_utterances import LiveUtterances

    live = LiveUtterances(conn)
    opened: list[int] = []
    block = 16000 * FILE_BLOCK_MS // 1000
    if use_vad:
        from ._cutter import UtteranceCutter
        from ._vad import SileroStream

        cutter = UtteranceCutter(await asyncio.to_thread(SileroStream))
        audio = np.concatenate([audio, np.zeros(16000, np.float32)])
    start = time.perf_counter()
    for n, offset in enumerate(range(0, audio.size, block)):
        piece = audio[offset : offset + block]
        # real time: a block can be handed over once it has been "spoken" in full
        spoken = (offset + piece.size) / 16000 / speed
        await asyncio.sleep(max(0.0, start + spoken - time.perf_counter()))
        if use_vad:
            events = cutter.feed_stream(piece)
        else:
            events = [StreamEvent("open" if n == 0 else "audio", piece)]
        opened += await live.apply(events)
    if use_vad:
        opened += await live.apply(cutter.cut_now_stream())
    else:
        opened += await live.apply([StreamEvent("close", reason="end_of_file")])
    return opened


def main_files(args: Any) -> int:
    try:
        check_scheduler_url(args.scheduler)
    except BadSchedulerUrl as exc:
        print(f"lingua-client: {exc}", file=sys.stderr)
        return 2
    missing = [f for f in args.file if not Path(f).is_file()]
    if missing:
        print(f"no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    return asyncio.run(
        run_files(
            args.scheduler,
            [Path(f) for f in args.file],
            src=args.src,
            tgt=args.tgt,
            as_json=args.json,
            save_tts=Path(args.save_tts) if args.save_tts else None,
            use_tts=not args.no_tts,
            use_vad=args.vad,
            pairing_code=args.pairing_code,
            stream=bool(getattr(args, "stream", False)),
        )
    )
