"""Streaming recognition against whole-utterance mode, on the node's own code, in one process.

Each committed English clip (`tests/data/speech/sentences.json`) is streamed in real time in
100 ms chunks into the node's streaming machinery (`StreamJob` passes scheduled by the
node's `StreamRunner` on a pool of the node's workers, Whisper base int8 with the node's
defaults), and sent whole through the node's `Pipeline` (VAD + ASR, no TTS in either mode:
the figures are for the text). Reported side by side with the targets and the figures of
WhisperLive 0.10.0 measured on this machine with the same model files and clips:

- start of speech (first voiced 10 ms frame of the clip) to the first partial with text;
- p50 interval between a stream's partials;
- end of speech to final result: from the moment the last chunk (`is_final`) is handed to the
  node, or the whole clip is handed to the pipeline, to the result (both modes measured from
  the same moment: the end of the utterance's audio, as the client's `latency_ms`); and the
  same from the clip's last voiced frame (the clips end in 0.41 to 0.47 s of silence, inside
  both figures);
- CPU seconds (this process, all threads) per second of audio;
- WER of the final transcripts against the clips' texts;
- concurrent real-time streams: N streams (clips back to back, starts staggered) for
  `--concurrency-s` seconds each; the largest N whose mean interval between a stream's
  passes (seconds of audio per pass) stays under twice the single-stream one. Passes, not
  partials: a pass that changes nothing sends no partial, so partial intervals hide how
  late passes run; the mean, as pauses and first words get extra passes close together
  that make a median look better than the cadence is.

    python bench/bench_streaming.py [--interval-ms 1000] [--levels 1,2,4,6,8] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from lingua_node.testing.agent_harness import job as harness_job
from lingua_protocol import (
    AsrPartial,
    AudioData,
    JobAssign,
    JobAudio,
    JobResult,
    PipelineConfig,
    float32_to_pcm16,
    read_wav,
)

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT / "tests" / "data" / "speech"
CHUNK_S = 0.1
PEER = {
    "name": "WhisperLive 0.10.0",
    "first_partial_s": 1.33,
    "final_after_end_s": "6.2 (2.4 with same-output threshold 3)",
    "cpu_per_audio_s": 3.7,
    "wer": 0.011,
}
TARGETS = {
    "first_partial_s": "<= 1.0",
    "final_ratio": "<= 0.7 x whole (clips over 3 s)",
    "cpu_per_audio_s": "<= 0.5",
    "wer": "<= whole-utterance WER",
    "streams": ">= 4",
}


def clips() -> list[dict[str, Any]]:
    out = []
    for item in json.loads((SPEECH / "sentences.json").read_text()):
        audio, _ = read_wav(SPEECH / item["file"])
        frames = audio[: audio.size // 160 * 160].reshape(-1, 160)
        voiced = np.flatnonzero(np.sqrt(np.mean(np.square(frames), axis=1)) > 300 / 32768)
        out.append(
            {
                "file": item["file"],
                "text": item["text"],
                "pcm": float32_to_pcm16(audio),
                "seconds": audio.size / 16000,
                "speech_start_s": float(voiced[0]) / 100 if voiced.size else 0.0,
                "trailing_s": audio.size / 16000 - (float(voiced[-1]) + 1) / 100
                if voiced.size
                else 0.0,
            }
        )
    return out


def job(n: int, pcm: bytes, *, stream: bool) -> JobAssign:
    """Job `n` (en -> en, no speech synthesis: the bench times recognition)."""
    return harness_job(n, pcm, stream=stream, pipeline=PipelineConfig(use_tts=False))


def whole_mode(pipeline: Any, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from lingua_node.testing.wer import word_edits

    rows = []
    for n, item in enumerate(items):
        cpu, started = time.process_time(), time.perf_counter()
        result = pipeline.run(job(n, item["pcm"], stream=False))
        latency = time.perf_counter() - started
        rows.append(
            {
                "file": item["file"],
                "final_after_end_s": latency,
                "cpu_s": time.process_time() - cpu,
                "edits": word_edits(item["text"], result.text_asr or "")[0],
                "words": len(item["text"].split()),
                "text": result.text_asr,
            }
        )
    return rows


class Streams:
    """Drives the node's `StreamRunner` the way the agent does, collecting what it reports."""

    def __init__(self, pipeline: Any, workers: int, interval_ms: int) -> None:
        from lingua_node import StreamConfig, StreamJob, StreamRunner

        config = StreamConfig(interval_ms=interval_ms)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lingua-job")
        self.runner = StreamRunner(
            lambda j: StreamJob.open(j, pipeline, "bench-node", config),
            self.pool,
            workers,
            self._report,
            config=config,
            clock=time.perf_counter,
            on_pass=self._on_pass,
        )
        self.partials: dict[str, list[tuple[float, AsrPartial]]] = {}
        self.pass_starts: dict[str, list[float]] = {}
        self.starts: dict[str, float] = {}
        self.results: dict[str, tuple[float, JobResult]] = {}
        self.done: dict[str, asyncio.Event] = {}
        self.next_id = 0

    def _on_pass(self, timing: Any) -> None:
        if not timing.final:
            self.pass_starts.setdefault(timing.key[0], []).append(timing.started)

    async def _report(self, key: tuple[str, str | None], out: object) -> None:
        now = time.perf_counter()
        if isinstance(out, AsrPartial):
            self.partials.setdefault(key[0], []).append((now, out))
        elif isinstance(out, JobResult):
            self.results[key[0]] = (now, out)
            self.done[key[0]].set()
        else:
            raise RuntimeError(f"stream {key} failed: {out}")

    async def stream(self, pcm: bytes) -> dict[str, Any]:
        """Streams one clip in real time; its timings, from the clip's start."""
        n = self.next_id
        self.next_id += 1
        job_id = f"job-{n}"
        self.done[job_id] = asyncio.Event()
        step = int(CHUNK_S * 16000) * 2
        pieces = [pcm[i : i + step] for i in range(0, len(pcm), step)]
        start = time.perf_counter()
        self.starts[job_id] = start
        self.runner.start(job(n, pieces[0], stream=True))
        key = (job_id, "a1")
        end = start
        for seq, piece in enumerate(pieces[1:]):
            due = start + (seq + 2) * CHUNK_S
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            final = seq == len(pieces) - 2
            if final:
                end = time.perf_counter()
            chunk = JobAudio(
                job_id=job_id,
                attempt_id="a1",
                seq=seq,
                payload=AudioData.from_bytes(piece),
                is_final=final,
            )
            self.runner.feed(key, chunk)
        await self.done[job_id].wait()
        done_at, result = self.results[job_id]
        seen = self.partials.get(job_id, [])
        return {
            "start": start,
            "first_text_at_s": next((t - start for t, p in seen if p.text), None),
            "intervals_s": [b[0] - a[0] for a, b in itertools.pairwise(seen)],
            "pass_intervals_s": [
                b - a for a, b in itertools.pairwise(self.pass_starts.get(job_id, []))
            ],
            "lags_s": [t - start - (p.audio_ms or 0) / 1000 for t, p in seen],
            "final_after_end_s": done_at - end,
            "text": result.text_asr or "",
        }


async def streaming_mode(
    pipeline: Any, items: list[dict[str, Any]], workers: int, interval_ms: int
) -> list[dict[str, Any]]:
    from lingua_node.testing.wer import word_edits

    streams = Streams(pipeline, workers, interval_ms)
    dispatcher = asyncio.create_task(streams.runner.run())
    rows = []
    try:
        await streams.stream(items[0]["pcm"])  # not measured: warms the stream path
        for item in items:
            cpu = time.process_time()
            out = await streams.stream(item["pcm"])
            first = out["first_text_at_s"]
            rows.append(
                {
                    "file": item["file"],
                    "first_partial_s": None if first is None else first - item["speech_start_s"],
                    "intervals_s": out["intervals_s"],
                    "final_after_end_s": out["final_after_end_s"],
                    "cpu_s": time.process_time() - cpu,
                    "edits": word_edits(item["text"], out["text"])[0],
                    "words": len(item["text"].split()),
                    "text": out["text"],
                }
            )
    finally:
        dispatcher.cancel()
        await streams.runner.close()
        streams.pool.shutdown(wait=True)
    return rows


async def concurrency(
    pipeline: Any,
    items: list[dict[str, Any]],
    workers: int,
    interval_ms: int,
    n: int,
    span_s: float,
) -> dict[str, float]:
    """`n` streams at once for about `span_s` each; their partial intervals and CPU use."""
    streams = Streams(pipeline, workers, interval_ms)
    dispatcher = asyncio.create_task(streams.runner.run())

    async def speaker(k: int) -> dict[str, list[float]]:
        await asyncio.sleep(k * interval_ms / 1000 / n)  # stagger the starts over an interval
        out: dict[str, list[float]] = {
            "intervals_s": [],
            "pass_intervals_s": [],
            "lags_s": [],
            "audio_s": [],
            "passes": [],
        }
        spoken = 0.0
        i = k
        while spoken < span_s:
            item = items[i % len(items)]
            one = await streams.stream(item["pcm"])
            for name in ("intervals_s", "pass_intervals_s", "lags_s"):
                out[name] += one[name]
            out["audio_s"].append(item["seconds"])
            out["passes"].append(len(one["pass_intervals_s"]) + 1)
            spoken += item["seconds"]
            i += 1
        return out

    cpu, started = time.process_time(), time.perf_counter()
    try:
        per = await asyncio.gather(*(speaker(k) for k in range(n)))
    finally:
        dispatcher.cancel()
        await streams.runner.close()
        streams.pool.shutdown(wait=True)
    wall = time.perf_counter() - started

    def pooled(name: str) -> list[float]:
        return [x for one in per for x in one[name]]

    return {
        "streams": n,
        "mean_pass_interval_s": sum(pooled("audio_s")) / sum(pooled("passes")),
        "p50_interval_s": p50(pooled("intervals_s")),
        "p50_pass_interval_s": p50(pooled("pass_intervals_s")),
        "p90_pass_interval_s": p90(pooled("pass_intervals_s")),
        "p50_lag_s": p50(pooled("lags_s")),
        "p90_lag_s": p90(pooled("lags_s")),
        "cpu_share": (time.process_time() - cpu) / wall,
    }


def p50(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p90(values: list[float]) -> float:
    return float(np.percentile(values, 90)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--interval-ms", type=int, default=None)
    parser.add_argument("--levels", default="1,2,4,6,8")
    parser.add_argument("--concurrency-s", type=float, default=12.0)
    parser.add_argument(
        "--workers", type=int, default=None, help="inference workers; default: the node's sizing"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from lingua_node import (
        NodeSettings,
        Pipeline,
        full_load_seconds,
        load_backends,
        pick_recognizer,
    )

    settings = NodeSettings(max_jobs=args.workers)
    interval_ms = args.interval_ms or settings.stream_interval_ms
    backends = load_backends(settings)
    pipeline = Pipeline(backends, "bench-node")
    workers = backends.max_jobs
    # every model replica's first decode is slow (CTranslate2 prepares it then): the node's
    # calibration warms them all at start; with --workers it is skipped, so warm them here
    full_load_seconds(pick_recognizer(backends.asr, "en", "transcribe"), workers)
    items = clips()
    print(
        f"node: {workers} workers ({backends.sizing}); advertises {backends.max_streams} "
        f"streams; interval {interval_ms} ms; chunks {CHUNK_S * 1000:.0f} ms",
        flush=True,
    )

    whole = whole_mode(pipeline, items)
    streamed = asyncio.run(streaming_mode(pipeline, items, workers, interval_ms))
    audio_s = sum(i["seconds"] for i in items)
    long_clips = [k for k, i in enumerate(items) if i["seconds"] > 3.0]

    print(f"\n{'clip':<15}{'first':>7}{'p50 gap':>9}{'final':>8}{'whole':>8}{'ratio':>7}  texts")
    for k, item in enumerate(items):
        s, w = streamed[k], whole[k]
        first = s["first_partial_s"]
        print(
            f"{item['file']:<15}{'-' if first is None else f'{first:.2f}':>7}"
            f"{p50(s['intervals_s']):>9.2f}{s['final_after_end_s']:>8.2f}"
            f"{w['final_after_end_s']:>8.2f}"
            f"{s['final_after_end_s'] / w['final_after_end_s']:>7.2f}  {s['text']!r}"
        )

    firsts = [s["first_partial_s"] for s in streamed if s["first_partial_s"] is not None]
    summary = {
        "first_partial_s": p50(firsts),
        "p50_interval_s": p50([x for s in streamed for x in s["intervals_s"]]),
        "final_stream_s": p50([streamed[k]["final_after_end_s"] for k in long_clips]),
        "final_whole_s": p50([whole[k]["final_after_end_s"] for k in long_clips]),
        "cpu_stream": sum(s["cpu_s"] for s in streamed) / audio_s,
        "cpu_whole": sum(w["cpu_s"] for w in whole) / audio_s,
        "wer_stream": sum(s["edits"] for s in streamed) / sum(s["words"] for s in streamed),
        "wer_whole": sum(w["edits"] for w in whole) / sum(w["words"] for w in whole),
    }
    summary["final_ratio"] = summary["final_stream_s"] / summary["final_whole_s"]
    # the same from the clip's last voiced 10 ms frame (each clip ends in ~0.45 s of silence,
    # inside both figures): what a listener waits after the last word
    summary["final_stream_word_s"] = p50(
        [streamed[k]["final_after_end_s"] + items[k]["trailing_s"] for k in long_clips]
    )
    summary["final_whole_word_s"] = p50(
        [whole[k]["final_after_end_s"] + items[k]["trailing_s"] for k in long_clips]
    )

    levels = []
    for n in [int(x) for x in args.levels.split(",") if x]:
        level = asyncio.run(
            concurrency(pipeline, items, workers, interval_ms, n, args.concurrency_s)
        )
        levels.append(level)
        print(
            f"{n:>2} streams: partials every {level['p50_interval_s']:.2f} s (p50); passes "
            f"every {level['mean_pass_interval_s']:.2f} s of audio (mean), "
            f"{level['p50_pass_interval_s']:.2f} s (p50), "
            f"{level['p90_pass_interval_s']:.2f} s (p90); partial lag behind the audio "
            f"{level['p50_lag_s']:.2f} s (p50), {level['p90_lag_s']:.2f} s (p90); "
            f"CPU {level['cpu_share']:.2f} cores",
            flush=True,
        )
    base = levels[0]["mean_pass_interval_s"] if levels else float("nan")
    sustained = max(
        (lv["streams"] for lv in levels if lv["mean_pass_interval_s"] < 2 * base), default=0
    )
    summary["streams_sustained"] = sustained

    print(f"\n{'':<34}{'streaming':>12}{'whole':>10}{'target':>36}{PEER['name']:>42}")
    rows = [
        ("start of speech -> first partial", f"{summary['first_partial_s']:.2f} s", "-",
         TARGETS["first_partial_s"], f"{PEER['first_partial_s']} s"),
        ("p50 interval between partials", f"{summary['p50_interval_s']:.2f} s", "-", "-", "-"),
        ("end of speech -> final (>3 s)", f"{summary['final_stream_s']:.2f} s",
         f"{summary['final_whole_s']:.2f} s", TARGETS["final_ratio"],
         f"{PEER['final_after_end_s']} s"),
        ("  ratio streaming / whole", f"{summary['final_ratio']:.2f}", "", "<= 0.7", ""),
        ("last word -> final (>3 s)", f"{summary['final_stream_word_s']:.2f} s",
         f"{summary['final_whole_word_s']:.2f} s", "", ""),
        ("CPU s per audio s", f"{summary['cpu_stream']:.2f}", f"{summary['cpu_whole']:.2f}",
         TARGETS["cpu_per_audio_s"], f"{PEER['cpu_per_audio_s']}"),
        ("WER", f"{summary['wer_stream']:.1%}", f"{summary['wer_whole']:.1%}",
         TARGETS["wer"], f"{PEER['wer']:.1%}"),
        ("real-time streams (pass gap < 2x)", f"{sustained}", "", TARGETS["streams"], "1"),
    ]  # fmt: skip
    for name, s, w, t, p in rows:
        print(f"{name:<34}{s:>12}{w:>10}{t:>36}{p:>42}")
    if args.json:
        print(json.dumps({"summary": summary, "levels": levels}, indent=2))


if __name__ == "__main__":
    main()
