"""GPU check: the node's self-test, its CUDA path and throughput figures on a machine with an
NVIDIA GPU, so anyone with one can report them. Runs on a CPU-only machine too, and says
which CUDA parts it skipped and why.

    python bench/gpu_check.py [--model DIR] [--jobs 1,2,4] [--rounds 4]

What it needs: `ctranslate2`, `faster-whisper` and this repository's `packages/node/src`
(found next to this script). Without `--model` it builds a tiny random Whisper (2 layers,
d_model 64, about 10 MB in int8) with `transformers` and CTranslate2's converter at run time,
so nothing large has to be copied to a borrowed machine: the ctranslate2 wheel and this
script fit in 64 MiB. The tiny model checks the runtime path (libraries, device, compute
type, concurrency); its transcripts are noise and its figures say nothing about accuracy.
`--model` with a real CTranslate2 Whisper folder (e.g. the node's `models/whisper-base`)
gives real throughput figures.

Steps, for the CPU and then (when CTranslate2 sees one) the GPU:
1. the NVIDIA runtime wheels (`pip install 'lingua-node[cuda]'`) preloaded as the node does;
2. the node's loader loads the model on the device and runs its self-test on the built-in
   clip; a CUDA failure prints the node's one-line cause and fix, and the CPU fallback;
3. throughput: k utterances at once (k from `--jobs`) through the node's recogniser, each on
   its own and batched into one model call (the node's default on CUDA,
   `LINGUA_NODE_ASR_BATCH`): utterances per second, real-time factor, median latency and the
   mean batch size the batched recogniser reached.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NODE_SRC = ROOT / "packages" / "node" / "src"
if NODE_SRC.is_dir() and str(NODE_SRC) not in sys.path:
    sys.path.insert(0, str(NODE_SRC))

TIMESTAMPS = 1501  # Whisper's <|0.00|> ... <|30.00|>
TEXT_TOKENS = 50257
WHISPER_LANGUAGES = 99  # a 51865-token vocabulary: the languages before "yue"


def build_tiny_whisper(folder: Path) -> Path:
    """A random 2-layer Whisper in CTranslate2 format, with a word-level tokenizer that has
    Whisper's special tokens at Whisper's ids (all faster-whisper needs)."""
    from ctranslate2.converters import TransformersConverter
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import WhisperConfig, WhisperForConditionalGeneration
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    languages = list(LANGUAGES)[:WHISPER_LANGUAGES]
    special = [
        "<|endoftext|>",
        "<|startoftranscript|>",
        *[f"<|{code}|>" for code in languages],
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nocaptions|>",
        "<|notimestamps|>",
        *[f"<|{i * 0.02:.2f}|>" for i in range(TIMESTAMPS)],
    ]
    tokens = [f"w{i}" for i in range(TEXT_TOKENS)] + special
    config = WhisperConfig(
        vocab_size=len(tokens),
        num_mel_bins=80,
        encoder_layers=2,
        decoder_layers=2,
        d_model=64,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        tie_word_embeddings=False,
    )
    model = WhisperForConditionalGeneration(config)
    _end_quickly(model, tokens.index("<|endoftext|>"))
    hf = folder / "hf"
    model.save_pretrained(hf)
    out = folder / "tiny-whisper"
    TransformersConverter(str(hf)).convert(str(out), quantization="int8", force=True)
    (out / "vocabulary.json").write_text(json.dumps(tokens))
    tokenizer = Tokenizer(WordLevel({t: i for i, t in enumerate(tokens)}, unk_token="w0"))
    tokenizer.add_special_tokens(special)
    tokenizer.save(str(out / "tokenizer.json"))
    return out


def _end_quickly(model: Any, eot: int) -> None:
    """Make the random decoder say <|endoftext|> at once: its last layer norm puts every
    hidden state near one direction, and only the end token's output row points along it.
    Random weights would otherwise write 448 tokens, several times over (temperature
    fallback), and the figures would measure that instead of a transcription's work."""
    import torch

    with torch.no_grad():
        norm = model.model.decoder.layer_norm
        direction = torch.randn(norm.weight.shape[0])
        direction /= direction.norm()
        norm.weight.fill_(0.01)
        norm.bias.copy_(direction * 10)
        model.proj_out.weight.mul_(0.01)
        model.proj_out.weight[eot] = direction * 10


def environment() -> int:
    import ctranslate2

    count = ctranslate2.get_cuda_device_count()
    print(f"ctranslate2 {ctranslate2.__version__}; CUDA devices visible: {count}")
    print(f"  cpu compute types: {sorted(ctranslate2.get_supported_compute_types('cpu'))}")
    if count:
        types = sorted(ctranslate2.get_supported_compute_types("cuda"))
        print(f"  cuda compute types: {types}")
    return int(count)


def self_test(model: Path, device: str, jobs: int, batch: str) -> Any:
    """The node's loader on `device`: self-test, CUDA fallback line, withheld reason.
    `batch`: the node's `asr_batch` setting ("off": each utterance on its own)."""
    from lingua_node import NodeSettings, load_recognizer, node_device

    settings = NodeSettings(device=device, max_jobs=jobs, asr_batch=batch)  # type: ignore[arg-type]
    tried = node_device(settings)  # on CUDA: the NVIDIA wheels preloaded first
    withheld: dict[tuple[str, str], str] = {}
    started = time.perf_counter()
    option = load_recognizer(settings, model, "gpu-check-whisper", tried, withheld)
    took = time.perf_counter() - started
    if option is None:
        print(f"  self-test FAILED on every device: {withheld}")
        return None
    from lingua_node import compute_type

    ran_on = getattr(option.recognizer, "device", tried)
    verdict = "passed" if ran_on == tried else f"fell back to {ran_on}"
    print(
        f"  self-test on {tried} ({compute_type(tried)}, batching {batch}): {verdict} "
        f"(load + test {took:.2f} s)"
    )
    return option.recognizer


def throughput(recognizer: Any, jobs: list[int], rounds: int) -> None:
    """k utterances at once through the node's recogniser, `rounds` times each."""
    import numpy as np
    from lingua_node import builtin_clip

    clip = builtin_clip()
    audio = np.concatenate([clip, clip[: 16000 * 5 - clip.size]])[: 16000 * 5]  # 5 s
    alone = recognizer.transcribe(audio, "en")  # warm up; the transcript alone
    batching = getattr(recognizer, "batching", None)
    differed: list[str] = []
    print(f"  {'jobs':>4} {'utt/s':>7} {'RTF':>6} {'median ms':>10} {'batch':>6}  (5 s utterances)")

    def one(_: int) -> float:
        t0 = time.perf_counter()
        heard = recognizer.transcribe(audio, "en")
        took = time.perf_counter() - t0
        if (heard.text, heard.words) != (alone.text, alone.words):
            differed.append(heard.text)
        return took

    for k in jobs:
        if batching is not None:
            batching.batcher.sizes.clear()
        with ThreadPoolExecutor(max_workers=k) as pool:
            t0 = time.perf_counter()
            latencies = list(pool.map(one, range(k * rounds)))
            wall = time.perf_counter() - t0
        n = k * rounds
        mean_batch = "-"
        if batching is not None:
            sizes = batching.batcher.sizes
            mean_batch = f"{sum(s * c for s, c in sizes.items()) / max(1, sum(sizes.values())):.2f}"
        print(
            f"  {k:>4} {n / wall:>7.2f} {wall / (n * 5.0):>6.3f} "
            f"{statistics.median(latencies) * 1000:>10.0f} {mean_batch:>6}"
        )
    # a real model must hear the same alone and in company (the tiny one's output is empty)
    print(f"  transcripts differing from the one alone: {len(differed)} {differed[:2]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a CTranslate2 Whisper folder")
    parser.add_argument("--jobs", default="1,2,4")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="  %(levelname)s %(message)s")
    jobs = [int(x) for x in args.jobs.split(",")]
    cuda = environment()
    with tempfile.TemporaryDirectory(prefix="lingua-gpu-check-") as tmp:
        model = args.model
        if model is None:
            print("building a tiny random Whisper (transformers + CTranslate2's converter) ...")
            model = build_tiny_whisper(Path(tmp))
            size = sum(p.stat().st_size for p in model.iterdir())
            print(f"  {model.name}: {size / 1e6:.1f} MB; its transcripts are noise")
        devices = ["cpu"]
        if cuda:
            devices.append("cuda")
        else:
            print(
                "CUDA parts skipped: CTranslate2 sees no CUDA device here (a CPU-only build, "
                "no NVIDIA driver, or no GPU); the CPU figures follow"
            )
        for device in devices:
            for batch in ("off", "on"):
                print(f"[{device}, {'batched' if batch == 'on' else 'each utterance alone'}]")
                recognizer = self_test(model, device, max(jobs), batch)
                if recognizer is not None:
                    throughput(recognizer, jobs, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
