"""Load every model the node has, once: the embedded defaults plus what the store installed."""

from __future__ import annotations

import logging
from pathlib import Path

from .backends.asr import WhisperASR
from .backends.tts import EspeakTTS, PiperTTS, TTSRouter, Voice
from .backends.vad import SileroVAD
from .embedded import ensure_embedded
from .pipeline import Backends, Translator
from .settings import NodeSettings
from .store import ModelStore

log = logging.getLogger("lingua.node.loader")


def load_translators(store: ModelStore, device: str) -> list[Translator]:
    from .backends.nmt import TextTranslator

    out: list[Translator] = []
    for entry in store.installed(kind="nmt"):
        try:
            out.append(TextTranslator(Path(entry["path"]), device=device))
        except Exception as exc:  # one broken model must not keep the node from serving
            log.error("cannot load NMT model %s: %s", entry.get("model_id"), exc)
    return out


def load_voices(store: ModelStore, default_voice: Path | None, espeak: bool) -> list[Voice]:
    voices: list[Voice] = []
    for entry in store.installed(kind="tts"):
        onnx = next(Path(entry["path"]).glob("*.onnx"), None)
        if onnx is not None:
            try:
                voices.append(PiperTTS(onnx))
            except Exception as exc:
                log.error("cannot load voice %s: %s", entry.get("model_id"), exc)
    if default_voice is not None:
        voices.append(PiperTTS(default_voice))
    if espeak:
        try:
            voices.append(EspeakTTS())
        except (FileNotFoundError, OSError) as exc:
            log.warning("espeak-ng unavailable, TTS limited to Piper voices: %s", exc)
    return voices


def load_backends(settings: NodeSettings) -> Backends:
    models = settings.models_path
    embedded = ensure_embedded(models)
    store = ModelStore(models)
    compute = "int8_float16" if settings.device == "cuda" else "int8"
    asr = WhisperASR(
        embedded.whisper_dir,
        device=settings.device,
        compute_type=compute,
        cpu_threads=settings.cpu_threads,
        workers=settings.max_jobs,
        beam_size=settings.asr_beam_size,
        short_context=settings.asr_short_context,
    )
    voices = load_voices(store, embedded.piper_voice, espeak=True) if settings.tts else []
    return Backends(
        vad=SileroVAD(),
        asr=asr,
        tts=TTSRouter(voices),
        translators=load_translators(store, settings.device),
    )
