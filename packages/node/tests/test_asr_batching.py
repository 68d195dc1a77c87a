"""Batching concurrent utterances: the rule (`BatchCollector`, a plain object driven with
`now`), its thread shell (`Batcher`), when the node batches (`batch_policy`), and, with the
real Whisper, that a batched utterance comes out exactly as it does alone (text, language,
every word's times)."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from lingua_node._backends.asr_batching import (
    DEFAULT_WINDOW_MS,
    BatchCollector,
    Batcher,
    BatchPolicy,
    batch_policy,
)

ROOT = Path(__file__).resolve().parents[3]
SPEECH = ROOT / "tests" / "data" / "speech"
WINDOW_S = 0.01


def collector(
    max_batch: int = 4, callers: int = 0, max_running: int = 4
) -> BatchCollector[str, str]:
    core: BatchCollector[str, str] = BatchCollector(
        BatchPolicy(max_batch, WINDOW_S, max_running=max_running)
    )
    for _ in range(callers):
        core.caller_started()
    return core


def test_a_lone_transcription_never_waits() -> None:
    core = collector(callers=1)
    core.add("encode", "a", now=0.0)
    [batch] = core.take_ready(now=0.0)
    assert batch.items == ["a"]


def test_a_call_from_an_unannounced_thread_never_waits() -> None:
    core = collector(callers=0)
    core.add("encode", "a", now=0.0)
    assert [b.items for b in core.take_ready(now=0.0)] == [["a"]]


def test_a_batch_waits_within_the_window_for_a_transcription_that_could_join() -> None:
    core = collector(callers=2)
    core.add("encode", "a", now=1.0)
    assert core.take_ready(now=1.0) == []
    assert core.wait_s(now=1.004) == pytest.approx(0.006)
    assert core.take_ready(now=1.0 + WINDOW_S - 1e-6) == []
    [batch] = core.take_ready(now=1.0 + WINDOW_S)
    assert batch.items == ["a"]
    assert core.wait_s(now=2.0) is None


def test_a_batch_runs_at_once_when_every_transcription_waits_in_it() -> None:
    core = collector(callers=2)
    core.add("encode", "a", now=0.0)
    core.add("encode", "b", now=0.001)
    [batch] = core.take_ready(now=0.001)
    assert batch.items == ["a", "b"]


def test_calls_with_different_keys_never_share_a_batch() -> None:
    core = collector(callers=2)
    core.add("encode 1000 frames", "a", now=0.0)
    core.add("encode 1200 frames", "b", now=0.0)
    batches = core.take_ready(now=0.0)
    assert sorted(b.items for b in batches) == [["a"], ["b"]]


def test_a_full_batch_runs_at_once_and_the_next_call_opens_another() -> None:
    core = collector(max_batch=2, callers=4)
    for item in "abc":
        core.add("generate", item, now=0.0)
    [full] = core.take_ready(now=0.0)
    assert full.items == ["a", "b"]
    assert core.waiting == 1
    assert core.take_ready(now=0.0) == []  # "c" waits for the fourth transcription
    assert [b.items for b in core.take_ready(now=WINDOW_S)] == [["c"]]


def test_a_transcription_in_a_running_batch_does_not_hold_up_another_batch() -> None:
    core = collector(callers=3)
    core.add("generate", "a", now=0.0)
    core.add("generate", "b", now=0.0)
    [running] = core.take_ready(now=WINDOW_S)  # the third transcription never came
    core.add("encode", "c", now=WINDOW_S)
    assert [b.items for b in core.take_ready(now=WINDOW_S)] == [["c"]]
    core.done(running)
    core.add("align", "a", now=0.1)
    assert core.take_ready(now=0.1) == []  # "b" is between calls again: it may come


def test_while_the_model_is_busy_a_ready_batch_waits_and_gathers_the_calls_arriving() -> None:
    core = collector(callers=3, max_running=1)
    core.add("generate", "a", now=0.0)
    [running] = core.take_ready(now=WINDOW_S)  # nobody joined within the window
    core.add("encode", "b", now=0.02)
    assert core.take_ready(now=0.02 + WINDOW_S) == []  # its window passed, but the model is busy
    assert core.wait_s(now=0.05) is None  # nothing to time: `done` wakes it
    core.add("encode", "c", now=0.05)
    core.done(running)
    [batch] = core.take_ready(now=0.06)
    assert batch.items == ["b", "c"]


def test_the_oldest_of_several_ready_batches_runs_first_when_one_may_run() -> None:
    core = collector(callers=2, max_running=1)
    core.add("align", "a", now=0.0)
    core.add("encode", "b", now=0.001)
    [first] = core.take_ready(now=0.001)
    assert first.items == ["a"]
    assert core.take_ready(now=0.001) == []
    core.done(first)
    core.caller_finished()  # "a" was its transcription's last call
    assert [b.items for b in core.take_ready(now=0.002)] == [["b"]]


def test_a_transcription_that_ends_releases_the_batch_waiting_for_it() -> None:
    core = collector(callers=2)
    core.add("encode", "a", now=0.0)
    assert core.take_ready(now=0.0) == []
    core.caller_finished()
    assert [b.items for b in core.take_ready(now=0.0)] == [["a"]]


def test_a_policy_outside_its_bounds_is_refused() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        BatchPolicy(0)
    with pytest.raises(ValueError, match="window_s"):
        BatchPolicy(2, window_s=2.0)
    with pytest.raises(ValueError, match="max_running"):
        BatchPolicy(2, max_running=0)


@pytest.mark.parametrize(
    ("setting", "device", "jobs", "running"),
    [
        ("auto", "cuda", 4, 1),  # one batch on the GPU at a time: calls gather behind it
        ("auto", "cpu", 4, None),
        ("on", "cpu", 2, 2),  # the CPU's jobs keep running side by side
        ("off", "cuda", 4, None),
        ("auto", "cuda", 1, None),  # one job has nothing to batch with
    ],
)
def test_the_node_batches_on_cuda_by_default_and_on_the_cpu_when_asked(
    setting: str, device: str, jobs: int, running: int | None
) -> None:
    policy = batch_policy(setting, device, jobs)  # type: ignore[arg-type]
    expected = (
        BatchPolicy(max_batch=jobs, window_s=DEFAULT_WINDOW_MS / 1000, max_running=running)
        if running is not None
        else None
    )
    assert policy == expected


def together(work: list[Callable[[], object]], batcher: Batcher[Any, Any, Any]) -> list[object]:
    """Each piece of work in its own announced transcription, all announced first."""
    announced = threading.Barrier(len(work))

    def one(fn: Callable[[], object]) -> object:
        with batcher.caller():
            announced.wait(timeout=10)
            return fn()

    with ThreadPoolExecutor(max_workers=len(work)) as pool:
        return list(pool.map(one, work))


def run_together(batcher: Batcher[str, int, int], items: list[int]) -> list[object]:
    """Each item submitted from its own announced transcription; an error is returned."""

    def submit(item: int) -> object:
        try:
            return batcher.submit("k", item)
        except RuntimeError as exc:
            return exc

    return together([functools.partial(submit, i) for i in items], batcher)


def test_concurrent_calls_run_as_one_batch_and_each_gets_its_own_result() -> None:
    runs: list[list[int]] = []

    def run(_key: str, items: list[int]) -> list[int]:
        runs.append(items)
        return [10 * i for i in items]

    batcher: Batcher[str, int, int] = Batcher(BatchPolicy(3, window_s=1.0), run)
    assert run_together(batcher, [1, 2, 3]) == [10, 20, 30]
    assert [sorted(r) for r in runs] == [[1, 2, 3]]
    assert batcher.sizes == {3: 1}


def test_a_failing_batch_fails_every_call_in_it() -> None:
    def run(_key: str, items: list[int]) -> list[int]:
        raise RuntimeError("CUDA out of memory")

    batcher: Batcher[str, int, int] = Batcher(BatchPolicy(2, window_s=1.0), run)
    outcomes = run_together(batcher, [1, 2])
    assert [str(o) for o in outcomes] == ["CUDA out of memory"] * 2


def test_a_batch_that_returns_too_few_results_fails_every_call() -> None:
    batcher: Batcher[str, int, int] = Batcher(BatchPolicy(2, window_s=1.0), lambda _k, _i: [1])
    outcomes = run_together(batcher, [1, 2])
    assert all("returned 1 results" in str(o) for o in outcomes)


class RecordingWhisper:
    """Test double of `ctranslate2.models.Whisper`: records each call's batch size and
    answers from its inputs, so every caller can check it got its own part."""

    device = "cpu"

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def encode(self, features: object, to_cpu: bool = False) -> object:
        import numpy as np

        array = np.asarray(features)
        self.calls.append(("encode", array.shape[0]))
        return array * 2

    def generate(self, features: object, prompts: list[list[int]], **options: object) -> list[str]:
        self.calls.append(("generate", len(prompts)))
        return [f"heard {p[-1]}" for p in prompts]

    def align(
        self,
        features: object,
        start_sequence: list[int],
        text_tokens: list[list[int]],
        num_frames: object,
        *,
        median_filter_width: int = 7,
    ) -> list[int]:
        self.calls.append(("align", len(text_tokens)))
        return [sum(t) for t in text_tokens]


def features(value: float, frames: int = 4) -> object:
    import ctranslate2
    import numpy as np

    return ctranslate2.StorageView.from_array(np.full((1, 2, frames), value, dtype=np.float32))


def test_equal_encoder_inputs_share_one_call_and_each_gets_its_own_output() -> None:
    import numpy as np
    from lingua_node._backends.asr_batched import BatchingWhisper

    model = RecordingWhisper()
    whisper = BatchingWhisper(model, BatchPolicy(2, window_s=1.0))
    out = together(
        [lambda: whisper.encode(features(1.0)), lambda: whisper.encode(features(3.0))],
        whisper.batcher,
    )
    assert model.calls == [("encode", 2)]
    assert sorted(float(np.asarray(o).max()) for o in out) == [2.0, 6.0]


def test_encoder_inputs_of_different_lengths_are_never_padded_into_one_call() -> None:
    from lingua_node._backends.asr_batched import BatchingWhisper

    model = RecordingWhisper()
    whisper = BatchingWhisper(model, BatchPolicy(2, window_s=1.0))
    together(
        [lambda: whisper.encode(features(1.0, 4)), lambda: whisper.encode(features(1.0, 6))],
        whisper.batcher,
    )
    assert model.calls == [("encode", 1), ("encode", 1)]


def test_decoder_calls_with_equal_options_share_one_call_with_each_prompt() -> None:
    from lingua_node._backends.asr_batched import BatchingWhisper

    model = RecordingWhisper()
    whisper = BatchingWhisper(model, BatchPolicy(3, window_s=1.0))
    out = together(
        [
            lambda: whisper.generate(features(1.0), [[1, 7]], beam_size=5),
            lambda: whisper.generate(features(2.0), [[1, 8]], beam_size=5),
            lambda: whisper.generate(features(3.0), [[1, 9]], beam_size=1),
        ],
        whisper.batcher,
    )
    assert out == [["heard 7"], ["heard 8"], ["heard 9"]]
    assert sorted(model.calls) == [("generate", 1), ("generate", 2)]


def test_alignments_share_a_call_only_when_their_texts_are_equally_long() -> None:
    """The alignment normalises attention over the text tokens: padding a shorter text
    moved a word's end from 0.46 s to 0.48 s on the committed Mandarin speech."""
    from lingua_node._backends.asr_batched import BatchingWhisper

    model = RecordingWhisper()
    whisper = BatchingWhisper(model, BatchPolicy(3, window_s=1.0))
    out = together(
        [
            lambda: whisper.align(features(1.0), [1], [[5, 6]], 4),
            lambda: whisper.align(features(2.0), [1], [[7, 8]], 4),
            lambda: whisper.align(features(3.0), [1], [[9, 9, 9]], 4),
        ],
        whisper.batcher,
    )
    assert out == [[11], [15], [27]]
    assert sorted(model.calls) == [("align", 1), ("align", 2)]


def committed_clips() -> list[tuple[str, str, object]]:
    """(file, language, 16 kHz audio) of the committed English and Spanish speech. Not the
    Mandarin clips: Whisper base hears espeak-ng's Mandarin so badly that its beam result
    fails faster-whisper's quality thresholds and it falls back to sampling, which differs
    from run to run even without batching."""
    from lingua_protocol import read_wav

    out: list[tuple[str, str, object]] = []
    for listing in ("sentences.json", "foreign.json"):
        for item in json.loads((SPEECH / listing).read_text())[:CLIPS_PER_LANGUAGE]:
            audio, _ = read_wav(SPEECH / item["file"])
            out.append((item["file"], item.get("lang", "en"), audio))
    return out


CLIPS_PER_LANGUAGE = 3
"""Five clips (three English, both Spanish) keep the fast suite fast; a batch still mixes
languages and lengths."""


def test_each_committed_clip_transcribed_in_a_batch_equals_the_clip_alone(
    models_dir: Path,
) -> None:
    from lingua_node._backends.asr import WhisperASR
    from lingua_node._embedded import ensure_embedded

    whisper = ensure_embedded(models_dir).whisper_dir
    clips = committed_clips()
    alone = WhisperASR(whisper, cpu_threads=1, workers=2)
    batched = WhisperASR(
        whisper, cpu_threads=1, workers=2, batching=BatchPolicy(len(clips), window_s=1.0)
    )
    assert batched.batching is not None
    expected = [alone.transcribe(audio, lang) for _f, lang, audio in clips]  # type: ignore[arg-type]
    # the test's own announcement keeps every batch open until it is full (or 1 s passed)
    with batched.batching.batcher.caller(), ThreadPoolExecutor(len(clips)) as pool:
        got = list(pool.map(lambda c: batched.transcribe(c[2], c[1]), clips))  # type: ignore[arg-type]
    for (name, _lang, _audio), want, have in zip(clips, expected, got, strict=True):
        assert (name, have.text, have.language) == (name, want.text, want.language)
        assert have.words == want.words, name
    assert max(batched.batching.batcher.sizes) >= 3, batched.batching.batcher.sizes


def test_the_loader_gives_a_recognizer_batching_only_when_the_setting_asks(
    models_dir: Path,
) -> None:
    from lingua_node._embedded import ensure_embedded
    from lingua_node._loader import load_recognizer
    from lingua_node._settings import NodeSettings

    whisper = ensure_embedded(models_dir).whisper_dir
    for setting, expected in (("on", 3), ("auto", None)):
        settings = NodeSettings(
            models_dir=models_dir,
            home=models_dir.parent,
            device="cpu",
            max_jobs=3,
            asr_batch=setting,  # type: ignore[arg-type]
            self_test=False,
        )
        option = load_recognizer(settings, whisper, "whisper-base", "cpu", {})
        assert option is not None
        batching = getattr(option.recognizer, "batching", None)
        assert (batching.batcher.policy.max_batch if batching else None) == expected
