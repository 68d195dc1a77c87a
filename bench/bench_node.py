"""Node figures: per-stage timings (VAD, ASR, translation, TTS) for the committed test speech,
the node's overhead over calling the same models directly in one process, throughput at 1, 2
and 4 concurrent jobs (each utterance on its own and batched), and the accuracy and latency of
the node's decoding defaults against faster-whisper's own defaults, in English and Mandarin.

Measured in one run: (1) the models called directly (faster-whisper, Piper) on each clip;
(2) the same clips as jobs through a real node process over a real scheduler, timed from
sending the utterance to receiving its result. Overhead = (2) / (1) - 1. (3) The English
clips as ASR jobs through the node's pipeline, 1, 2 and 4 at a time: utterances per second
and real-time factor (wall time / audio time; below 1 is faster than real time), with the
concurrent utterances run side by side and batched into one model call (`LINGUA_NODE_ASR_BATCH`).
(4) The English clips transcribed with the node's defaults and with faster-whisper's defaults on
the same loaded model: words wrong and median ASR time. (5) The same for the committed Mandarin
clips (espeak-ng speech, `tests/data/speech/mandarin.json`): character error rate.

    python bench/bench_node.py [--repeat 3] [--parts stages,throughput,accuracy,mandarin]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from lingua_protocol import AudioData, JobAssign, PipelineConfig, float32_to_pcm16, read_wav

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
    from lingua_node import NodeSettings, Pipeline, load_backends

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
    from lingua_client import LocalCluster, SessionConnection
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


def asr_job(audio: object, lang: str = "en") -> JobAssign:
    """A transcription job (no translation, no speech) for 16 kHz float audio."""
    return JobAssign(
        job_id="j",
        session_id="s",
        utterance_index=0,
        src_lang=lang,
        tgt_lang=lang,
        audio=AudioData.from_bytes(float32_to_pcm16(audio)),  # type: ignore[arg-type]
        pipeline=PipelineConfig(use_nmt=False, use_tts=False),
    )


def english_clips() -> list[tuple[str, str, object]]:
    """(file, reference text, 16 kHz float audio) of the committed English speech."""
    out = []
    for item in json.loads((SPEECH / "sentences.json").read_text()):
        audio, _ = read_wav(SPEECH / item["file"])
        out.append((item["file"], item["text"], audio))
    return out


THROUGHPUT_RUNS = ((1, (1,), "off"), (4, (1, 2, 4), "off"), (4, (1, 2, 4), "on"))
"""(jobs the models are loaded for, jobs at once, `asr_batch`): all cores for one job, then
the cores divided among 4 jobs with each utterance on its own and batched."""


def throughput(models: Path, rounds: int) -> dict[str, dict[str, float]]:
    """ASR jobs (VAD + ASR, no translation or speech) through the pipeline, k at a time, for
    each of `THROUGHPUT_RUNS`, keyed "k of n" (+ " batched"). A batched run also reports the
    mean size of its decoder batches."""
    from concurrent.futures import ThreadPoolExecutor

    from lingua_node import NodeSettings, Pipeline, load_backends

    clips_en = english_clips() * rounds
    audio_s = sum(a.size for _f, _t, a in clips_en) / 16000  # type: ignore[attr-defined]
    out: dict[str, dict[str, float]] = {}
    for loaded_for, concurrency, batch in THROUGHPUT_RUNS:
        settings = NodeSettings(
            models_dir=models,
            home=models.parent,
            max_jobs=loaded_for,
            tts=False,
            asr_batch=batch,  # type: ignore[arg-type]
        )
        backends = load_backends(settings)
        pipeline = Pipeline(backends, "b")
        batching = getattr(backends.asr.choose("en"), "batching", None)  # type: ignore[attr-defined]

        def one(item: tuple[str, str, object], pipeline: Pipeline = pipeline) -> float:
            _name, _text, audio = item
            job = asr_job(audio)
            t0 = time.perf_counter()
            assert pipeline.run(job).success
            return time.perf_counter() - t0

        one(clips_en[0])  # warm up
        for k in concurrency:
            if batching is not None:
                batching.batcher.sizes.clear()
            with ThreadPoolExecutor(max_workers=k) as pool:
                t0 = time.perf_counter()
                latencies = list(pool.map(one, clips_en))
                wall = time.perf_counter() - t0
            label = f"{k} of {loaded_for}" + (" batched" if batching is not None else "")
            out[label] = {
                "utt_per_s": len(clips_en) / wall,
                "rtf": wall / audio_s,
                "median_ms": statistics.median(latencies) * 1000,
            }
            if batching is not None:
                sizes = batching.batcher.sizes
                out[label]["mean_batch"] = sum(n * c for n, c in sizes.items()) / max(
                    1, sum(sizes.values())
                )
    return out


def mandarin_clips() -> list[tuple[str, str, object]]:
    """(file, reference text, 16 kHz float audio) of the committed Mandarin speech."""
    out = []
    for item in json.loads((SPEECH / "mandarin.json").read_text()):
        audio, _ = read_wav(SPEECH / item["file"])
        out.append((item["file"], item["text"], audio))
    return out


def accuracy(models: Path, repeat: int, lang: str = "en") -> dict[str, dict[str, float]]:
    """Errors and ASR time on the committed English clips (words) or Mandarin clips
    (characters; `lang="zh"`): the node's pipeline with its defaults (VAD, then Whisper with
    beam 5 and the short window) vs faster-whisper's own defaults on the same model (beam 5,
    the full 30 s window, temperature fallback, previous-text conditioning, no VAD; Chinese
    converted to simplified characters as the node does). Times are of the transcription
    call alone."""
    from lingua_node import NodeSettings, Pipeline, load_backends, to_simplified
    from lingua_node.testing.wer import char_edits, word_edits

    backends = load_backends(NodeSettings(models_dir=models, home=models.parent, tts=False))
    pipeline = Pipeline(backends, "b")
    asr: Any = backends.asr.choose(lang)  # type: ignore[attr-defined]
    clips_lang = english_clips() if lang == "en" else mandarin_clips()
    edits = word_edits if lang == "en" else char_edits
    heard_in: list[float] = []

    def node_defaults(audio: object) -> str:
        job = asr_job(audio, lang)
        result = pipeline.run(job)
        assert result.service_timings is not None
        heard_in.append((result.service_timings.asr_ms or 0) / 1000)
        return result.text_asr or ""

    def fw_defaults(audio: object) -> str:
        segments, _info = asr.model.transcribe(audio, language=lang)  # type: ignore[arg-type]
        text = "".join(s.text for s in segments)
        return to_simplified(text) if lang == "zh" else text

    out: dict[str, dict[str, float]] = {}
    for label, fn in (("node defaults", node_defaults), ("faster-whisper", fw_defaults)):
        fn(clips_lang[0][2])  # warm up
        heard_in.clear()
        wrong = total = 0
        times: list[float] = []
        five: list[float] = []
        for _name, text, audio in clips_lang:
            runs = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                hyp = fn(audio)
                runs.append(heard_in.pop() if heard_in else time.perf_counter() - t0)
            e, n = edits(text, hyp)
            wrong, total = wrong + e, total + n
            times.append(statistics.median(runs))
            if 4.5 <= audio.size / 16000 <= 5.5:  # type: ignore[attr-defined]
                five.append(statistics.median(runs))
        out[label] = {
            "wrong": wrong,
            "words": total,
            "median_ms": statistics.median(times) * 1000,
            "five_s_ms": (five[0] if five else float("nan")) * 1000,
        }
    return out


def report_throughput(figures: dict[str, dict[str, float]]) -> None:
    print("throughput: English clips as ASR jobs through the pipeline, k at a time")
    print(f"{'k of loaded for':>23} {'utt/s':>7} {'RTF':>6} {'median job ms':>14} {'batch':>6}")
    for k, f in figures.items():
        batch = f"{f['mean_batch']:.2f}" if "mean_batch" in f else "-"
        print(f"{k:>23} {f['utt_per_s']:>7.2f} {f['rtf']:>6.3f} {f['median_ms']:>14.0f} {batch:>6}")
    print("  batch: mean calls per model call (encoder, decoder, alignment) in a batched run")


def report_accuracy(figures: dict[str, dict[str, float]], lang: str = "en") -> None:
    if lang == "en":
        print("accuracy: committed English speech, Whisper base int8; words")
    else:
        print(
            "accuracy: committed Mandarin speech (espeak-ng, synthetic), Whisper base int8; "
            "characters (CER)"
        )
    rate = "WER" if lang == "en" else "CER"
    print(f"{'decoding':<16} {'wrong':>9} {rate:>6} {'median ms':>10} {'5 s clip ms':>12}")
    for label, f in figures.items():
        wer = f["wrong"] / max(1, f["words"])
        five = "-" if math.isnan(f["five_s_ms"]) else f"{f['five_s_ms']:.0f}"  # no ~5 s clip
        print(
            f"{label:<16} {int(f['wrong']):>4}/{int(f['words']):<4} {wer * 100:>5.1f}% "
            f"{f['median_ms']:>10.0f} {five:>12}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models-dir", type=Path)
    parser.add_argument("--parts", default="stages,throughput,accuracy,mandarin")
    args = parser.parse_args()
    from lingua_node import NodeSettings, ensure_embedded

    models = args.models_dir or NodeSettings().models_path
    ensure_embedded(models)
    parts = set(args.parts.split(","))
    if "throughput" in parts:
        report_throughput(throughput(models, max(1, args.repeat - 1)))
    if "accuracy" in parts:
        report_accuracy(accuracy(models, args.repeat))
    if "mandarin" in parts:
        report_accuracy(accuracy(models, args.repeat, "zh"), "zh")
    if "stages" not in parts:
        return
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
