"""A stand-in for CTranslate2's Whisper under faster-whisper that batches concurrent calls.

faster-whisper's `WhisperModel.transcribe` calls its CTranslate2 model (`encode`, then
`generate`, possibly again at other temperatures, then `align` for word timestamps) with one
utterance at a time. `BatchingWhisper` replaces that model object: each of those three calls
goes to a `Batcher` (`asr_batching.py`), which puts calls from jobs running at the same time
into one CTranslate2 call and hands each job its own part of the result. Only calls that
padding would not change go together: `encode` calls with equally long windows, `generate`
calls with equally long prompts and equal options, `align` calls whose texts have equally
many tokens. Everything else faster-whisper does (features, prompts, temperature fallback,
segments, word timing) is unchanged, so a batched utterance comes out as it would alone
(tested on the committed speech with the real Whisper).

A batch of one is the original call, unchanged. Batched inputs are stacked as NumPy arrays,
so on CUDA the encoder output is brought to host memory (`to_cpu=True`, as faster-whisper does
itself on several GPUs: about 1.5 MB per utterance for Whisper base) and split there.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import ctranslate2
import numpy as np

from .asr_batching import Batcher, BatchPolicy

Key = tuple[Any, ...]
"""(method, input shape, dtype, ...options): calls with equal keys may share a batch."""


@dataclass(frozen=True, slots=True)
class _Call:
    """One job's call: its input (the CTranslate2 array as given and as NumPy) and what
    else varies per job (prompts for `generate`, text tokens and frames for `align`)."""

    storage: ctranslate2.StorageView
    array: np.ndarray
    per_item: tuple[Any, ...] = ()


def _frozen(value: Any) -> Hashable:
    """Decoding options as a hashable key part (lists, e.g. suppressed tokens, as tuples)."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value  # type: ignore[no-any-return]


def _options_key(options: dict[str, Any]) -> Key:
    return tuple(sorted((name, _frozen(value)) for name, value in options.items()))


class BatchingWhisper:
    """Wraps a `ctranslate2.models.Whisper`; `encode`, `generate` and `align` are batched
    across threads, every other attribute is the model's own."""

    def __init__(self, model: Any, policy: BatchPolicy) -> None:
        self._model = model
        self._on_cuda = model.device == "cuda"
        self.batcher: Batcher[Key, _Call, Any] = Batcher(policy, self._run)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def encode(self, features: ctranslate2.StorageView, to_cpu: bool = False) -> Any:
        array = np.asarray(features)
        # on CUDA the output comes to host memory, so any later call can join a batch
        key: Key = ("encode", array.shape[1:], array.dtype.str, to_cpu or self._on_cuda)
        return self.batcher.submit(key, _Call(features, array))

    def generate(
        self, features: ctranslate2.StorageView, prompts: Sequence[Sequence[int]], **options: Any
    ) -> list[Any]:
        array = np.asarray(features)
        lengths = tuple(len(p) for p in prompts)
        if array.shape[0] != len(prompts) or len(set(lengths)) > 1:
            return list(self._model.generate(features, prompts, **options))
        key: Key = ("generate", array.shape[1:], array.dtype.str, lengths[0], _options_key(options))
        call = _Call(features, array, (tuple(prompts),))
        return list(self.batcher.submit(key, call))

    def align(
        self,
        features: ctranslate2.StorageView,
        start_sequence: Sequence[int],
        text_tokens: Sequence[Sequence[int]],
        num_frames: int | Sequence[int],
        *,
        median_filter_width: int = 7,
    ) -> list[Any]:
        array = np.asarray(features)
        frames = [num_frames] * len(text_tokens) if isinstance(num_frames, int) else num_frames
        if array.shape[0] != len(text_tokens) or not all(text_tokens):
            return list(
                self._model.align(
                    features,
                    start_sequence,
                    text_tokens,
                    num_frames,
                    median_filter_width=median_filter_width,
                )
            )
        # equal text lengths only: the alignment normalises attention over the text tokens,
        # so padding a shorter text moves its word times (measured: 0.46 s became 0.48 s)
        key: Key = (
            "align",
            array.shape[1:],
            array.dtype.str,
            tuple(start_sequence),
            median_filter_width,
            tuple(len(t) for t in text_tokens),
        )
        call = _Call(features, array, (tuple(tuple(t) for t in text_tokens), tuple(frames)))
        return list(self.batcher.submit(key, call))

    def _run(self, key: Key, calls: list[_Call]) -> list[Any]:
        """One CTranslate2 call for `calls` (all with this key); one result per call."""
        method = key[0]
        if method == "encode":
            return self._encode(calls, bool(key[3]))
        if method == "generate":
            return self._generate(calls, dict(key[4]))
        return self._align(calls, list(key[3]), int(key[4]))

    @staticmethod
    def _stacked(calls: list[_Call]) -> ctranslate2.StorageView:
        return ctranslate2.StorageView.from_array(np.concatenate([c.array for c in calls]))

    @staticmethod
    def _split(results: Sequence[Any], calls: list[_Call]) -> list[Any]:
        out, start = [], 0
        for c in calls:
            n = c.array.shape[0]
            out.append(list(results[start : start + n]))
            start += n
        return out

    def _encode(self, calls: list[_Call], to_cpu: bool) -> list[Any]:
        if len(calls) == 1:
            return [self._model.encode(calls[0].storage, to_cpu=to_cpu)]
        encoded = np.asarray(self._model.encode(self._stacked(calls), to_cpu=to_cpu))
        out, start = [], 0
        for c in calls:
            n = c.array.shape[0]
            part = np.ascontiguousarray(encoded[start : start + n])
            out.append(ctranslate2.StorageView.from_array(part))  # keeps `part` alive
            start += n
        return out

    def _generate(self, calls: list[_Call], options: dict[str, Any]) -> list[Any]:
        if len(calls) == 1:
            return [self._model.generate(calls[0].storage, list(calls[0].per_item[0]), **options)]
        prompts = [list(p) for c in calls for p in c.per_item[0]]
        return self._split(self._model.generate(self._stacked(calls), prompts, **options), calls)

    def _align(self, calls: list[_Call], start_sequence: list[int], width: int) -> list[Any]:
        tokens = [list(t) for c in calls for t in c.per_item[0]]
        frames = [f for c in calls for f in c.per_item[1]]
        if len(calls) == 1:
            frames_arg: int | list[int] = frames[0] if len(frames) == 1 else frames
            return [
                self._model.align(
                    calls[0].storage,
                    start_sequence,
                    tokens,
                    frames_arg,
                    median_filter_width=width,
                )
            ]
        results = self._model.align(
            self._stacked(calls), start_sequence, tokens, frames, median_filter_width=width
        )
        return self._split(results, calls)
