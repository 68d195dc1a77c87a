"""What the node tells the scheduler it can do, derived only from what is loaded.

Nothing is advertised that the node has not got: a translation pair appears only when a text
model for it is loaded or when Whisper can translate speech into English; TTS languages are
the installed voices'; features it cannot compute are `false`.
"""

from __future__ import annotations

import platform

import psutil
from lingua_protocol import (
    PROTOCOL_VERSION,
    CapabilityByType,
    FeatureFlags,
    HardwareInfo,
    InstalledModel,
    InstalledService,
    LanguageCapabilities,
    LanguagePair,
    NodeRegister,
)

from . import __version__
from ._asr_choice import asr_models
from ._pipeline import Backends


def hardware(device: str) -> HardwareInfo:
    gpus = None
    if device == "cuda":
        from ._gpu import gpu_inventory

        gpus = gpu_inventory()
    return HardwareInfo(
        cpu_cores=psutil.cpu_count(logical=True) or 1,
        memory_gb=round(psutil.virtual_memory().total / 2**30, 1),
        gpus=gpus,
    )


def features(b: Backends | None = None) -> FeatureFlags:
    """Speech rate comes from Whisper's word timestamps and every voice can follow it (Piper
    and espeak-ng); emotion and voice style have no model. Streaming recognition when the
    node holds streams (`Backends.max_streams`), at its default interval."""
    streams = b is not None and b.max_streams > 0
    return FeatureFlags(
        speech_rate_detection=True,
        emotion_detection=False,
        voice_style_detection=False,
        speech_rate_control=bool(b.tts.voices) if b is not None else False,
        enable_streaming_asr=streams,
        partial_update_interval_ms=b.stream_interval_ms if b is not None and streams else None,
    )


def language_capabilities(b: Backends) -> LanguageCapabilities:
    asr = list(b.asr.languages)
    nmt = sorted({p for t in b.translators for p in t.pairs})
    speech_targets = b.speech_translation_targets()
    pairs = {(s, t) for s, t in nmt}
    for target in speech_targets:
        pairs |= {(lang, target) for lang in asr if lang != target}
    return LanguageCapabilities(
        supported_language_pairs=[LanguagePair(src=s, tgt=t) for s, t in sorted(pairs)],
        asr_languages=[*asr, "auto"] if b.asr.multilingual else asr,
        tts_languages=b.tts.languages(),
        nmt_pairs=[LanguagePair(src=s, tgt=t) for s, t in nmt],
        speech_translation_targets=speech_targets,
    )


def installed(b: Backends, device: str) -> tuple[list[InstalledModel], list[InstalledService]]:
    models = [
        InstalledModel(model_id="silero-vad", kind="vad", engine="onnx", enabled=True),
        *(
            InstalledModel(
                model_id=o.recognizer.model_id,
                kind="asr",
                languages=sorted(o.published_for),
                version=o.version,
                engine="faster-whisper",
                enabled=True,
            )
            for o in asr_models(b.asr)
        ),
    ]
    for t in b.translators:
        for s, g in t.pairs:
            models.append(
                InstalledModel(
                    model_id=t.model_id,
                    kind="nmt",
                    src_lang=s,
                    tgt_lang=g,
                    engine=getattr(t, "engine", "transformers"),
                    enabled=True,
                )
            )
    for v in b.tts.voices:
        models.append(
            InstalledModel(
                model_id=v.model_id,
                kind="tts",
                languages=v.languages(),
                engine=v.engine,
                enabled=True,
            )
        )
    # the device the default recogniser really runs on (CPU after a CUDA fallback)
    asr_device = next(
        (str(getattr(o.recognizer, "device", device)) for o in asr_models(b.asr)), device
    )
    services = [
        InstalledService(
            service_id="vad", type="VAD", device="cpu", status="ready", model_id="silero-vad"
        ),
        InstalledService(
            service_id="asr",
            type="ASR",
            device=asr_device,
            status="ready" if b.asr.languages else "failed",
            model_id=b.asr.model_id,
        ),
        InstalledService(
            service_id="tts",
            type="TTS",
            device="cpu",
            status="ready" if b.tts.voices else "not_installed",
        ),
        InstalledService(
            service_id="nmt",
            type="NMT",
            device=device,
            status="ready" if (b.translators or b.asr.multilingual) else "not_installed",
        ),
    ]
    for kind, model_id in sorted(b.withheld):
        models.append(InstalledModel(model_id=model_id, kind=kind, enabled=False))
        services.append(
            InstalledService(
                service_id=f"{kind}:{model_id}"[:128],
                type=kind.upper(),
                status="failed",
                model_id=model_id,
            )
        )
    return models, services


def by_type(b: Backends) -> list[CapabilityByType]:
    can_translate = bool(b.translators) or b.asr.multilingual
    can_hear = bool(b.asr.languages)
    withheld = "; ".join(f"{k} {m}: {why}" for (k, m), why in sorted(b.withheld.items()))
    return [
        CapabilityByType(type="VAD", ready=True),
        CapabilityByType(
            type="ASR",
            ready=can_hear,
            reason=None if can_hear else _reason("no working speech recogniser", withheld),
        ),
        CapabilityByType(
            type="NMT",
            ready=can_translate,
            reason=None if can_translate else "no translation model installed",
        ),
        CapabilityByType(
            type="TTS",
            ready=bool(b.tts.voices),
            reason=None if b.tts.voices else _reason("no TTS voice installed", withheld),
        ),
    ]


def _reason(what: str, withheld: str) -> str:
    """A capability's reason, with what was withheld and why, capped at the protocol's 1024
    characters for reasons."""
    return (f"{what} (withheld: {withheld})" if withheld else what)[:1024]


def register_message(
    b: Backends,
    node_id: str,
    *,
    device: str,
    max_jobs: int,
    accept_public: bool,
    token: str | None,
    binary_audio: bool,
) -> NodeRegister:
    models, services = installed(b, device)
    return NodeRegister(
        node_id=node_id,
        version=__version__,
        platform=f"{platform.system()}-{platform.machine()}",
        hardware=hardware(device),
        installed_models=models,
        features_supported=features(b),
        accept_public_jobs=accept_public,
        capability_schema_version="2.0",
        installed_services=services,
        capability_by_type=by_type(b),
        language_capabilities=language_capabilities(b),
        max_concurrent_jobs=max_jobs,
        max_concurrent_streams=b.max_streams,
        protocol_version=PROTOCOL_VERSION,
        binary_audio=binary_audio,
        auth_token=token,
    )
