"""Load every model the node has, once: the embedded defaults plus what the store installed.

Every model is self-tested as it is loaded (`selftest.py`), on the node's device. One that
fails on CUDA is loaded again on the CPU, with one log line naming the cause and the fix
(`device.cuda_failure_line`); one that fails on the CPU too is withheld: loaded nothing,
advertised nothing, and listed in `Backends.withheld` (the register shows it with
`enabled: false`). A model taken out at run time (`health.py`) stays out until the node
restarts, also across store reloads.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil

from ._asr_choice import AsrOption, ASRRouter, asr_models
from ._backends.asr_batching import batch_policy
from ._backends.interfaces import Recognizer, Translator, Voice
from ._backends.nmt import MANIFEST, read_manifest
from ._backends.registry import engine_class
from ._backends.tts import TTSRouter
from ._concurrency import (
    LATENCY_BUDGET_RTF,
    WorkerPlan,
    calibrated_max_jobs,
    cpu_threads_per_job,
    plan_workers,
    stream_capacity,
)
from ._device import compute_type, cuda_failure_line, preload_cuda_libraries, resolve_device
from ._embedded import ensure_embedded, piper_voice_path
from ._gpu import gpu_inventory
from ._health import BackendHealth
from ._memory_budget import MB, MemoryBudget
from ._pipeline import Backends
from ._selftest import (
    check_recognizer,
    check_translator,
    check_voice,
    clip_seconds,
    full_load_seconds,
)
from ._settings import NodeSettings
from ._store import ModelStore

log = logging.getLogger("lingua.node.loader")

B = TypeVar("B")
Withheld = dict[tuple[str, str], str]


def load_checked(
    kind: str,
    model_id: str,
    make: Callable[[str], B],
    check: Callable[[B], None] | None,
    device: str,
    withheld: Withheld,
) -> B | None:
    """`make(device)` then `check` it; on a GPU failure, the same on the CPU. None (and an
    entry in `withheld`) when it works nowhere. `check` None skips the self-test."""
    try:
        return _made_and_checked(make, check, device)
    except Exception as exc:  # noqa: BLE001  (whatever a model raises, the node serves the others)
        failure: Exception = exc
    if device == "cpu":
        why = f"failed to load or in its self-test on the CPU ({type(failure).__name__}: {failure})"
        log.error("%s model %s %s; not serving it", kind, model_id, why)
        withheld[(kind, model_id)] = why
        return None
    try:
        backend = _made_and_checked(make, check, "cpu")
    except Exception as exc:  # noqa: BLE001  (as above: logged and withheld, never fatal)
        log.error(cuda_failure_line(kind, model_id, failure, fallback=False, cpu_failure=exc))
        withheld[(kind, model_id)] = (
            f"failed its self-test on {device} ({failure}) and on the CPU "
            f"({type(exc).__name__}: {exc})"
        )
        return None
    log.warning(cuda_failure_line(kind, model_id, failure, fallback=True))
    return backend


def _made_and_checked(
    make: Callable[[str], B], check: Callable[[B], None] | None, device: str
) -> B:
    backend = make(device)
    if check is not None:
        check(backend)
    return backend


def memory_budget(settings: NodeSettings) -> MemoryBudget:
    mb = settings.model_memory_budget_mb
    return MemoryBudget(mb * MB if mb is not None else None)


def node_device(settings: NodeSettings) -> str:
    """The device models are tried on first: `auto` resolved, and on CUDA the NVIDIA
    runtime wheels preloaded (once per process; loading a library twice is a no-op)."""
    device = resolve_device(settings.device)
    if device == "cuda":
        _preload_once()
    return device


@functools.cache
def _preload_once() -> list[str]:
    return preload_cuda_libraries()


def load_translators(
    store: ModelStore,
    device: str,
    withheld: Withheld | None = None,
    health: BackendHealth | None = None,
    self_test: bool = True,
    budget: MemoryBudget | None = None,
) -> list[Translator]:
    withheld = {} if withheld is None else withheld
    out: list[Translator] = []
    for entry in _smallest_first(store.installed(kind="nmt")):
        folder = Path(entry["path"])
        model_id = str(entry.get("model_id"))
        if health is not None and health.is_withdrawn("nmt", model_id):
            continue
        size = _folder_size(folder)
        if not _fits(budget, "nmt", model_id, size, withheld):
            continue
        engine = str(read_manifest(folder).get("engine", "transformers"))
        make = functools.partial(_translator, engine, folder)
        translator = load_checked(
            "nmt",
            model_id,
            make,
            check_translator if self_test else None,
            device,
            withheld,
        )
        if translator is not None:
            out.append(translator)
        elif budget is not None:
            budget.release(size)
    return out


def _smallest_first(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Store entries by the size of their folder, so a budget skips the larger models."""
    return sorted(entries, key=lambda e: _folder_size(Path(e["path"])))


def _fits(
    budget: MemoryBudget | None, kind: str, model_id: str, size: int, withheld: Withheld
) -> bool:
    why = budget.admit(kind, model_id, size) if budget is not None else None
    if why is not None:
        withheld[(kind, model_id)] = why
    return why is None


def _translator(engine: str, folder: Path, device: str) -> Translator:
    return engine_class("nmt", engine)(folder, device=device)


def load_voices(
    store: ModelStore,
    default_voice: Path | None,
    espeak: bool,
    withheld: Withheld | None = None,
    health: BackendHealth | None = None,
    self_test: bool = True,
    budget: MemoryBudget | None = None,
) -> list[Voice]:
    """Hub voices first, then the embedded Piper voice, then espeak-ng; all on the CPU."""
    withheld = {} if withheld is None else withheld
    check = check_voice if self_test else None
    piper = engine_class("tts", "piper")
    if budget is not None and default_voice is not None:
        budget.count(default_voice.stat().st_size)
    onnx_files = [
        onnx
        for entry in _smallest_first(store.installed(kind="tts"))
        if (onnx := next(Path(entry["path"]).glob("*.onnx"), None)) is not None
        and _fits(budget, "tts", onnx.stem, onnx.stat().st_size, withheld)
    ]
    if default_voice is not None:
        onnx_files.append(default_voice)
    voices: list[Voice] = []
    for onnx in onnx_files:
        if health is not None and health.is_withdrawn("tts", onnx.stem):
            continue
        make = _ignoring_device(functools.partial(piper, onnx))
        voice = load_checked("tts", onnx.stem, make, check, "cpu", withheld)
        if voice is not None:
            voices.append(voice)
        elif budget is not None and onnx != default_voice:
            budget.release(onnx.stat().st_size)
    if espeak and not (health is not None and health.is_withdrawn("tts", "espeak-ng")):
        try:
            espeak_ng = engine_class("tts", "espeak-ng")()
        except (FileNotFoundError, OSError) as exc:
            log.warning("espeak-ng unavailable, TTS limited to Piper voices: %s", exc)
        else:
            make = _ignoring_device(lambda: espeak_ng)
            voice = load_checked("tts", "espeak-ng", make, check, "cpu", withheld)
            if voice is not None:
                voices.append(voice)
    return voices


def _ignoring_device(factory: Callable[[], B]) -> Callable[[str], B]:
    """A maker for a backend that always runs on the CPU (voices)."""
    return lambda _device: factory()


def worker_plan(settings: NodeSettings, device: str) -> WorkerPlan:
    """Jobs at once and threads per job for this machine (`concurrency.plan_workers`)."""
    gpu_gib = None
    if device == "cuda":
        gpus = gpu_inventory() or []
        gpu_gib = min((g.memory_gb for g in gpus if g.memory_gb), default=None)
    return plan_workers(
        device,
        psutil.cpu_count(logical=True) or 1,
        gpu_gib,
        settings.max_jobs,
        settings.cpu_threads,
    )


def _whisper(settings: NodeSettings, folder: Path, model_id: str, device: str) -> Recognizer:
    # sized for the node's device even when this model fell back to the CPU: the jobs the
    # node takes are the same, and a CPU job then gets the cores divided among them
    plan = worker_plan(settings, resolve_device(settings.device))
    threads = plan.cpu_threads or cpu_threads_per_job(
        psutil.cpu_count(logical=True) or 1, plan.workers
    )
    return engine_class("asr", settings.asr_engine)(
        folder,
        model_id=model_id,
        device=device,
        compute_type=compute_type(device),
        cpu_threads=threads if device == "cpu" else plan.cpu_threads,
        workers=plan.workers,
        beam_size=settings.asr_beam_size,
        short_context=settings.asr_short_context,
        batching=batch_policy(
            settings.asr_batch, device, plan.workers, settings.asr_batch_window_ms
        ),
    )


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def load_recognizer(
    settings: NodeSettings,
    folder: Path,
    model_id: str,
    device: str,
    withheld: Withheld,
    published: list[str] | None = None,
    version: str | None = None,
) -> AsrOption | None:
    """One faster-whisper model, self-tested (CPU fallback), as an option for the router."""
    recognizer = load_checked(
        "asr",
        model_id,
        lambda d: _whisper(settings, folder, model_id, d),
        check_recognizer if settings.self_test else None,
        device,
        withheld,
    )
    if recognizer is None:
        return None
    languages = set(recognizer.languages)
    return AsrOption(
        recognizer,
        frozenset(languages & set(published) if published else languages),
        _folder_size(folder),
        version,
    )


def load_recognizers(
    settings: NodeSettings,
    store: ModelStore,
    base: list[AsrOption],
    loaded: list[AsrOption],
    withheld: Withheld | None = None,
    health: BackendHealth | None = None,
    budget: MemoryBudget | None = None,
) -> ASRRouter:
    """`base` (the embedded recogniser, when it works) plus every faster-whisper model the
    store installed; a model already in `loaded` (same id and version) is reused, not loaded
    (or tested) again. `base` is the caller's to count in `budget`."""
    withheld = {} if withheld is None else withheld
    device = node_device(settings)
    options = list(base)
    reuse = {(o.recognizer.model_id, o.version): o for o in loaded}
    installed = _smallest_first(store.installed(kind="asr"))
    if budget is not None:  # what stays loaded counts before anything new is admitted
        for entry in installed:
            kept = reuse.get((str(entry["model_id"]), entry.get("version")))
            if kept is not None and not (
                health and health.is_withdrawn("asr", kept.recognizer.model_id)
            ):
                budget.count(kept.size_bytes)
    for entry in installed:
        if entry.get("engine") != "faster-whisper":
            continue
        model_id = str(entry["model_id"])
        if health is not None and health.is_withdrawn("asr", model_id):
            continue
        key = (model_id, entry.get("version"))
        if key in reuse:  # loaded already: it stays (and was counted first, below)
            options.append(reuse[key])
            continue
        folder = Path(entry["path"])
        try:
            meta = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError) as exc:
            log.error("cannot read ASR model %s: %s", model_id, exc)
            continue
        size = _folder_size(folder)
        if not _fits(budget, "asr", model_id, size, withheld):
            continue
        option = load_recognizer(
            settings,
            folder,
            model_id,
            device,
            withheld,
            [str(x) for x in meta.get("languages") or []],
            entry.get("version"),
        )
        if option is not None:
            options.append(option)
        elif budget is not None:
            budget.release(size)
    return ASRRouter(options, pinned=settings.asr_model)


def load_backends(settings: NodeSettings) -> Backends:
    models = settings.models_path
    embedded = ensure_embedded(models)
    store = ModelStore(models)
    device = node_device(settings)
    withheld: Withheld = {}
    health = BackendHealth(settings.backend_failure_limit)
    budget = memory_budget(settings)
    default = load_recognizer(settings, embedded.whisper_dir, "whisper-base", device, withheld)
    base = [default] if default is not None else []
    for option in base:
        budget.count(option.size_bytes)
    test = settings.self_test
    asr = load_recognizers(settings, store, base, [], withheld, None, budget)
    voices = (
        load_voices(store, embedded.piper_voice, True, withheld, None, test, budget)
        if settings.tts
        else []
    )
    plan = worker_plan(settings, device)
    max_jobs, sizing = plan.workers, "set by the operator" if plan.operator_set else "planned"
    full_load_s: float | None = None
    if default is not None and settings.self_test and not plan.operator_set:
        full_load_s = full_load_seconds(default.recognizer, plan.workers)
        max_jobs = calibrated_max_jobs(plan, clip_seconds(), full_load_s)
        threads = f"{plan.cpu_threads} threads" if plan.cpu_threads else "the library's threads"
        sizing = (
            f"planned {plan.workers} on {device} with {threads} each; {plan.workers} at once "
            f"took {full_load_s:.2f} s each for the {clip_seconds():.1f} s clip, "
            f"budget {LATENCY_BUDGET_RTF * clip_seconds():.2f} s"
        )
    log.debug("max concurrent jobs %d (%s)", max_jobs, sizing)
    max_streams = settings.max_streams
    if max_streams is None:
        interval_s = settings.stream_interval_ms / 1000
        max_streams = stream_capacity(max_jobs, interval_s, full_load_s)
        sizing += f"; {max_streams} streams at a {settings.stream_interval_ms} ms interval"
    return Backends(
        vad=engine_class("vad", settings.vad_engine)(),
        asr=asr,
        tts=TTSRouter(voices),
        translators=load_translators(store, device, withheld, None, test, budget),
        withheld=withheld,
        health=health,
        max_jobs=max_jobs,
        sizing=sizing,
        max_streams=max_streams if default is not None else 0,
        stream_interval_ms=settings.stream_interval_ms,
    )


class StoreWatcher:
    """Reloads the hub-installed models when the store's manifest changes, so a model
    installed with `hatch run node models install` is served without a restart (NMT, ASR and
    TTS voices; an ASR model already loaded is kept, a removed model is freed once its running
    jobs end). Newly loaded models are self-tested like those loaded at start."""

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
        with self.backends.replacing:
            self._reload()
        return True

    def _reload(self) -> None:
        b = self.backends
        hub_ids = {str(e.get("model_id")) for e in self.store.installed()}
        # A hub model's self-test result is redone below; what else was withheld (an embedded
        # model, a model withdrawn at run time) stays withheld.
        withheld = {
            k: v for k, v in b.withheld.items() if k[1] not in hub_ids or b.health.is_withdrawn(*k)
        }
        device = node_device(self.settings)
        test = self.settings.self_test
        budget = memory_budget(self.settings)
        current = asr_models(b.asr)
        local = [o for o in current if o.version is None]  # the embedded model: no hub version
        hub = [o for o in current if o.version is not None]
        for option in local:
            budget.count(option.size_bytes)
        b.asr = load_recognizers(self.settings, self.store, local, hub, withheld, b.health, budget)
        if self.settings.tts:
            voices = load_voices(
                self.store, piper_voice_path(), True, withheld, b.health, test, budget
            )
            b.tts = TTSRouter(voices)
        b.translators = load_translators(self.store, device, withheld, b.health, test, budget)
        b.withheld = withheld
