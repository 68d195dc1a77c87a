"""Test doubles of the node's engines, for the device-fallback, self-test and health tests.

`CublasMissingRecognizer` raises exactly what CTranslate2 raises on a machine whose CUDA 12
runtime is missing, and only on `cuda`: the first transcription fails, loading does not.
They are registered in the engine registry by the tests that use them (as "test-...").
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
from lingua_protocol import FloatAudio

from lingua_node._backends.interfaces import Transcript

CUBLAS_MISSING = "Library libcublas.so.12 is not found or cannot be loaded"


class CublasMissingRecognizer:
    """Loads anywhere; transcribes on the CPU only, like faster-whisper without cuBLAS 12."""

    engine = "test-cublas-missing"
    multilingual = False

    def __init__(self, folder: Path | None = None, *, model_id: str = "double", **kw: Any) -> None:
        self.model_id = model_id
        self.device = str(kw.get("device", "cpu"))
        self.languages = list(kw.get("languages", ["en", "es", "fr"]))
        self.calls = 0

    def transcribe(
        self, audio: FloatAudio, language: str | None, *, task: str = "transcribe"
    ) -> Transcript:
        self.calls += 1
        if self.device == "cuda":
            raise RuntimeError(CUBLAS_MISSING)
        return Transcript(f"heard by {self.model_id}", language or "en", 1.0)


class BrokenEverywhereRecognizer(CublasMissingRecognizer):
    """Fails its self-test on every device (a corrupt model, a broken runtime)."""

    engine = "test-broken"

    def transcribe(
        self, audio: FloatAudio, language: str | None, *, task: str = "transcribe"
    ) -> Transcript:
        raise RuntimeError(CUBLAS_MISSING if self.device == "cuda" else "model.bin is corrupt")


class FailsAfterSelfTestRecognizer(CublasMissingRecognizer):
    """Passes its self-test (the first call), then fails every job: a GPU that went away."""

    engine = "test-fails-later"

    def __init__(self, folder: Path | None = None, **kw: Any) -> None:
        super().__init__(folder, **kw)
        self._lock = threading.Lock()

    def transcribe(
        self, audio: FloatAudio, language: str | None, *, task: str = "transcribe"
    ) -> Transcript:
        with self._lock:
            self.calls += 1
            first = self.calls == 1
        if not first:
            raise RuntimeError("CUDA failed with error out of memory")
        return Transcript("self-test", language or "en", 1.0)


class SpeechTranslatingRecognizer(CublasMissingRecognizer):
    """Like `CublasMissingRecognizer`, and multilingual: it also translates speech into
    English, which gives a node a complete pipeline without a text translation model."""

    engine = "test-speech-translating"
    multilingual = True


class PassThroughVAD:
    """Every sample is speech."""

    engine = "test-pass-through"

    def speech(self, audio: FloatAudio) -> FloatAudio:
        return np.asarray(audio, dtype=np.float32)


def install_fake_asr(models: Path, model_id: str, size_bytes: int, version: str = "1") -> None:
    """A faster-whisper model folder and its store entry, as `ModelStore.install` leaves them
    (test data for loader tests that use these doubles as the engine, not a hub)."""
    folder = models / f"{model_id}@{version}"
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"\0" * size_bytes)
    (folder / "lingua_model.json").write_text(json.dumps({"kind": "asr", "languages": ["en"]}))
    index_file = models / "installed.json"
    index = json.loads(index_file.read_text()) if index_file.is_file() else {}
    index[model_id] = {
        "model_id": model_id,
        "version": version,
        "kind": "asr",
        "engine": "faster-whisper",
        "dir": folder.name,
    }
    index_file.write_text(json.dumps(index))
