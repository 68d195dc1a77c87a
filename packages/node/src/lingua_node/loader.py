"""Load every model the node has, once: the embedded defaults plus what the store installed."""

from __future__ import annotations

import logging
from pathlib import Path

from .backends.interfaces import Translator, Voice
from .backends.nmt import read_manifest
from .backends.registry import engine_class
from .backends.tts import TTSRouter
from .embedded import ensure_embedded
from .pipeline import Backends
from .settings import NodeSettings
from .store import ModelStore

log = logging.getLogger("lingua.node.loader")


def load_translators(store: ModelStore, device: str) -> list[Translator]:
    out: list[Translator] = []
    for entry in store.installed(kind="nmt"):
        folder = Path(entry["path"])
        engine = str(read_manifest(folder).get("engine", "transformers"))
        try:
            out.append(engine_class("nmt", engine)(folder, device=device))
        except Exception as exc:  # one broken model must not keep the node from serving
            log.error("cannot load NMT model %s: %s", entry.get("model_id"), exc)
    return out


def load_voices(store: ModelStore, default_voice: Path | None, espeak: bool) -> list[Voice]:
    voices: list[Voice] = []
    for entry in store.installed(kind="tts"):
        onnx = next(Path(entry["path"]).glob("*.onnx"), None)
        if onnx is not None:
            try:
                voices.append(engine_class("tts", "piper")(onnx))
            except Exception as exc:  # one broken voice must not keep the node from serving
                log.error("cannot load voice %s: %s", entry.get("model_id"), exc)
    if default_voice is not None:
        voices.append(engine_class("tts", "piper")(default_voice))
    if espeak:
        try:
            voices.append(engine_class("tts", "espeak-ng")())
        except (FileNotFoundError, OSError) as exc:
            log.warning("espeak-ng unavailable, TTS limited to Piper voices: %s", exc)
    return voices


def load_backends(settings: NodeSettings) -> Backends:
    models = settings.models_path
    embedded = ensure_embedded(models)
    store = ModelStore(models)
    compute = "int8_float16" if settings.device == "cuda" else "int8"
    asr = engine_class("asr", settings.asr_engine)(
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
        vad=engine_class("vad", settings.vad_engine)(),
        asr=asr,
        tts=TTSRouter(voices),
        translators=load_translators(store, settings.device),
    )


class StoreWatcher:
    """Reloads the hub-installed models when the store's manifest changes, so a model
    installed with `hatch run node models install` is served without a restart."""

    def __init__(self, settings: NodeSettings, backends: Backends) -> None:
        self.settings = settings
        self.backends = backends
        self.store = ModelStore(settings.models_path)
        self._stamp = self._current()

    def _current(self) -> tuple[float, int] | None:
        path = self.store.root / "installed.json"
        if not path.is_file():
            return None
        st = path.stat()
        return (st.st_mtime, st.st_size)

    def __call__(self) -> bool:
        stamp = self._current()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        log.info("model store changed: reloading installed models")
        self.backends.translators = load_translators(self.store, self.settings.device)
        return True
