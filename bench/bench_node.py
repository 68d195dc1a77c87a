"""Node figures: per-stage timings (VAD, ASR, translation, TTS) for the committed test speech,
and the node's overhead over calling the same models directly in one process.

Measured in one run: (1) the models called directly (faster-whisper, Piper) on each clip;
(2) the same clips as jobs through a real node process over a real scheduler, timed from
sending the utterance to receiving its result. Overhead = (2) / (1) - 1.

    python bench/bench_node.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from lingua_protocol import AudioData, JobAssign, PipelineConfig
from lingua_protocol.audio import float32_to_pcm16, read_wav

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT / "tests" / "data" / "speech"


def clips() -> list[tuple[str, str, bytes, float]]:
    out = []
    for item in json.loads((SPEECH / "sentences.json").read_text()):
        audio, _ = read_wav(SPEECH / item["file"])
        out.append((item["file"], "en", float32_to_pcm16(audio), audio.size / 16000))
    for item in json.loads((SPEECH / "foreign.json").read_text()):
        audio, _ = read_wav(SPEECH / item["file"])
        out.append((item["file"], item["lang"], float32_to_pcm16(audio), audio.size / 16000))
    return out


def direct(models: Path, repeat: int) -> dict[str, dict[str, float]]:
    """The floor: the node's own backends called in this process, no sockets, no scheduler."""
    from lingua_node.loader import load_backends
    from lingua_node.pipeline import Pipeline
    from lingua_node.settings import NodeSettings

    pipeline = Pipeline(load_backends(NodeSettings(models_dir=models, home=models.parent)), "b")
    figures: dict[str, dict[str, float]] = {}
    for name, lang, pcm, _dur in clips():
        runs = []
        for _ in range(repeat + 1):
            job = JobAssign(
                job_id="j",
                session_id="s",
                utterance_index=0,
                src_lang=lang,
                tgt_lang="en",
                audio=AudioData.from_bytes(pcm),
                pipeline=PipelineConfig(use_tts=True),
            )
            t0 = time.perf_counter()
            result = pipeline.run(job)
            wall = (time.perf_counter() - t0) * 1000
            assert result.success, result.error
            t = result.service_timings
            assert t is not None
            runs.append(
                {
                    "vad": t.vad_ms or 0,
                    "asr": t.asr_ms or 0,
                    "nmt": t.nmt_ms or 0,
                    "tts": t.tts_ms or 0,
                    "total": wall,
                }
            )
        runs = runs[1:]  # the first run warms caches
        figures[name] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    return figures


async def through_node(models: Path, repeat: int) -> dict[str, float]:
    """The same clips as utterances through a scheduler and a node process: send -> result."""
    from lingua_client.connection import SessionConnection
    from lingua_client.local_cluster import LocalCluster
    from lingua_protocol import SessionInit

    out: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, LocalCluster(Path(tmp), models_dir=models) as c:
        c.start_hub()  # the whole system runs, as a user would have it
        c.start_scheduler()
        c.wait_node_ready(c.start_node("bench-node", max_jobs=1))
        for name, lang, pcm, _dur in clips():
            conn = SessionConnection(
                c.session_url, SessionInit(src_lang=lang, tgt_lang="en"), lambda m: None
            )
            await conn.start()
            for i in range(repeat + 1):
                t0 = time.perf_counter()
                await conn.send_audio(pcm, spoken_until=t0)
                await conn.drained(120)
                if i:
                    out.setdefault(name, []).append(conn.stats.latency_ms[i])
            await conn.close()
    return {k: statistics.median(v) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models-dir", type=Path)
    args = parser.parse_args()
    from lingua_node.embedded import ensure_embedded
    from lingua_node.settings import NodeSettings

    models = args.models_dir or NodeSettings().models_path
    ensure_embedded(models)
    durations = {name: dur for name, _l, _p, dur in clips()}
    floor = direct(models, args.repeat)
    node = asyncio.run(through_node(models, args.repeat))
    print(
        "node bench: Whisper base int8 (CPU), Piper en_US-joe-medium; medians of "
        f"{args.repeat} runs; ms"
    )
    print(
        f"{'clip':<16} {'audio s':>7} {'vad':>6} {'asr':>7} {'transl':>7} {'tts':>6} "
        f"{'direct':>7} {'via node':>9} {'overhead':>9}"
    )
    ratios = []
    for name, f in floor.items():
        ratio = node[name] / f["total"] - 1
        ratios.append(ratio)
        print(
            f"{name:<16} {durations[name]:>7.2f} {f['vad']:>6.0f} {f['asr']:>7.0f} "
            f"{f['nmt']:>7.0f} {f['tts']:>6.0f} {f['total']:>7.0f} {node[name]:>9.0f} "
            f"{ratio * 100:>8.1f}%"
        )
    print(
        f"median node overhead over direct calls: {statistics.median(ratios) * 100:.1f}% "
        "(target <= 5%)"
    )
    ok = sum(node[n] <= 1.15 * f["total"] + 100 for n, f in floor.items())
    print(
        f"end to end (client -> scheduler -> node -> client; the result carries text and "
        f"speech together, so both arrive at once): {ok}/{len(floor)} clips within "
        "1.15 x direct + 100 ms"
    )
    five = [f["asr"] for n, f in floor.items() if 4.5 <= durations[n] <= 5.5]
    if five:
        print(f"ASR of a ~5 s English utterance: {five[0]:.0f} ms (target <= 1000 ms)")


if __name__ == "__main__":
    main()
