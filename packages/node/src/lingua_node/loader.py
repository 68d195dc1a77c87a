"""Load every model the node has, once: the embedded defaults plus what the store installed."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from .asr_choice import AsrOption, ASRRouter, asr_models
from .backends.interfaces import Recognizer, Translator, Voice
from .backends.nmt import MANIFEST, read_manifest
from .backends.registry import engine_class
from .backends.tts import TTSRouter
from .embedded import ensure_embedded, piper_voice_path
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


def _whisper(settings: NodeSettings, folder: Path, model_id: str) -> Recognizer:
    return engine_class("asr", settings.asr_engine)(
        folder,
        model_id=model_id,
        device=settings.device,
        compute_type="int8_float16" if settings.device == "cuda" else "int8",
        cpu_threads=settings.cpu_threads,
        workers=settings.max_jobs,
        beam_size=settings.asr_beam_size,
        short_context=settings.asr_short_context,
    )


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def load_recognizers(
    settings: NodeSettings, store: ModelStore, embedded: AsrOption, loaded: list[AsrOption]
) -> ASRRouter:
    """The embedded recogniser plus every faster-whisper model the store installed; a model
    already in `loaded` (same id and version) is reused, not loaded again."""
    options = [embedded]
    reuse = {(o.recognizer.model_id, o.version): o for o in loaded}
    for entry in store.installed(kind="asr"):
        if entry.get("engine") != "faster-whisper":
            continue
        key = (entry["model_id"], entry.get("version"))
        if key in reuse:
            options.append(reuse[key])
            continue
        folder = Path(entry["path"])
        try:
            recognizer = _whisper(settings, folder, entry["model_id"])
            meta = json.loads((folder / MANIFEST).read_text())
        except Exception as exc:  # one broken model must not keep the node from serving
            log.error("cannot load ASR model %s: %s", entry.get("model_id"), exc)
            continue
        published = [str(x) for x in meta.get("languages") or []]
        languages = set(recognizer.languages)
        options.append(
            AsrOption(
                recognizer,
                frozenset(languages & set(published) if published else languages),
                _folder_size(folder),
                entry.get("version"),
            )
        )
    return ASRRouter(options, pinned=settings.asr_model)


def load_backends(settings: NodeSettings) -> Backends:
    models = settings.models_path
    embedded = ensure_embedded(models)
    store = ModelStore(models)
    whisper = _whisper(settings, embedded.whisper_dir, "whisper-base")
    default = AsrOption(whisper, frozenset(whisper.languages), _folder_size(embedded.whisper_dir))
    voices = load_voices(store, embedded.piper_voice, espeak=True) if settings.tts else []
    return Backends(
        vad=engine_class("vad", settings.vad_engine)(),
        asr=load_recognizers(settings, store, default, []),
        tts=TTSRouter(voices),
        translators=load_translators(store, settings.device),
    )


class StoreWatcher:
    """Reloads the hub-installed models when the store's manifest changes, so a model
    installed with `hatch run node models install` is served without a restart (NMT, ASR and
    TTS voices; an ASR model already loaded is kept, a removed model is freed once its running
    jobs end)."""

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
        current = asr_models(self.backends.asr)
        self.backends.asr = load_recognizers(self.settings, self.store, current[0], current[1:])
        if self.settings.tts:
            self.backends.tts = TTSRouter(load_voices(self.store, piper_voice_path(), espeak=True))
        return True
