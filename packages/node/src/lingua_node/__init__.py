"""Lingua compute node: runs VAD, ASR, translation and TTS jobs for a scheduler."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lingua_protocol import lazy_exports

__version__ = "0.1.0"

# Public names, imported on first use: importing the package stays cheap (the
# engines behind some of them load large libraries).
_LAZY: dict[str, str] = {
    "ASRRouter": "._asr_choice",
    "AsrOption": "._asr_choice",
    "Backends": "._pipeline",
    "ENGINES": "._backends.registry",
    "ModelStore": "._store",
    "NodeAgent": "._agent",
    "NodeSettings": "._settings",
    "Pipeline": "._pipeline",
    "PiperTTS": "._backends.tts",
    "StageGate": "._jobs",
    "StoreWatcher": "._loader",
    "StreamConfig": "._streaming.recognizer",
    "StreamJob": "._streaming.stream_job",
    "StreamRunner": "._streaming.workers",
    "TTSRouter": "._backends.tts",
    "WHISPER_SHA256": "._embedded",
    "build_whisper_base": "._embedded",
    "builtin_clip": "._selftest",
    "compute_type": "._device",
    "decode_audio": "._audio_decode",
    "ensure_embedded": "._embedded",
    "full_load_seconds": "._selftest",
    "load_backends": "._loader",
    "load_recognizer": "._loader",
    "node_device": "._loader",
    "pick_recognizer": "._asr_choice",
    "piper_voice_path": "._embedded",
    "to_simplified": "._backends.asr",
}

if TYPE_CHECKING:
    from ._agent import NodeAgent
    from ._asr_choice import AsrOption, ASRRouter, pick_recognizer
    from ._audio_decode import decode_audio
    from ._backends.asr import to_simplified
    from ._backends.registry import ENGINES
    from ._backends.tts import PiperTTS, TTSRouter
    from ._device import compute_type
    from ._embedded import WHISPER_SHA256, build_whisper_base, ensure_embedded, piper_voice_path
    from ._jobs import StageGate
    from ._loader import StoreWatcher, load_backends, load_recognizer, node_device
    from ._pipeline import Backends, Pipeline
    from ._selftest import builtin_clip, full_load_seconds
    from ._settings import NodeSettings
    from ._store import ModelStore
    from ._streaming.recognizer import StreamConfig
    from ._streaming.stream_job import StreamJob
    from ._streaming.workers import StreamRunner


__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "ENGINES",
    "WHISPER_SHA256",
    "ASRRouter",
    "AsrOption",
    "Backends",
    "ModelStore",
    "NodeAgent",
    "NodeSettings",
    "Pipeline",
    "PiperTTS",
    "StageGate",
    "StoreWatcher",
    "StreamConfig",
    "StreamJob",
    "StreamRunner",
    "TTSRouter",
    "build_whisper_base",
    "builtin_clip",
    "compute_type",
    "decode_audio",
    "ensure_embedded",
    "full_load_seconds",
    "load_backends",
    "load_recognizer",
    "node_device",
    "pick_recognizer",
    "piper_voice_path",
    "to_simplified",
]
