"""Value objects nested inside messages: features, pipeline, models, capabilities, usage."""

from __future__ import annotations

from typing import Any

from .base import LangCode, Model, NonNegInt, SourceLang


class FeatureFlags(Model):
    """Optional analysis modules a session asks for or a node supports."""

    emotion_detection: bool | None = None
    voice_style_detection: bool | None = None
    speech_rate_detection: bool | None = None

    def requested(self) -> set[str]:
        """Names of the features switched on."""
        data = self.model_dump()
        return {name for name, on in data.items() if on is True}


class PipelineConfig(Model):
    """Which stages a job runs."""

    use_asr: bool = True
    use_nmt: bool = True
    use_tts: bool = True


class InstalledModel(Model):
    """A model installed on a node (v0.1 shape; `languages` added for ASR/TTS models)."""

    model_id: str
    kind: str
    src_lang: str | None = None
    tgt_lang: str | None = None
    languages: list[str] | None = None
    dialect: str | None = None
    version: str | None = None
    enabled: bool | None = None
    engine: str | None = None


class GpuInfo(Model):
    name: str
    memory_gb: float | None = None


class HardwareInfo(Model):
    cpu_cores: NonNegInt | None = None
    memory_gb: float | None = None
    gpus: list[GpuInfo] | None = None


class ResourceUsage(Model):
    """Load figures a node reports in its heartbeat (percentages 0-100)."""

    cpu_percent: float | None = None
    gpu_percent: float | None = None
    gpu_mem_percent: float | None = None
    mem_percent: float | None = None
    running_jobs: NonNegInt | None = None


class InstalledService(Model):
    """Capability schema v2: one running service (ASR, NMT, TTS, VAD, ...)."""

    service_id: str
    type: str
    device: str | None = None
    status: str | None = None
    model_id: str | None = None
    version: str | None = None


class CapabilityByType(Model):
    """Capability schema v2: whether the node can run a stage type right now."""

    type: str
    ready: bool
    reason: str | None = None


class LanguagePair(Model):
    src: SourceLang
    tgt: LangCode


class LanguageCapabilities(Model):
    """Capability schema v2: the languages a node serves.

    `supported_language_pairs` are the translation paths (text NMT pairs and speech
    translation, e.g. any -> en). `asr_languages`/`tts_languages`, when absent, are taken from
    the pairs' sources and targets.
    """

    supported_language_pairs: list[LanguagePair] | None = None
    asr_languages: list[SourceLang] | None = None
    tts_languages: list[LangCode] | None = None
    nmt_pairs: list[LanguagePair] | None = None
    speech_translation_targets: list[LangCode] | None = None


class ServiceTimings(Model):
    """Wall time spent in each stage of one job, in milliseconds."""

    vad_ms: float | None = None
    asr_ms: float | None = None
    nmt_ms: float | None = None
    tts_ms: float | None = None
    total_ms: float | None = None


class ResultExtra(Model):
    """Outputs of optional modules; absent or null when not computed."""

    emotion: str | None = None
    speech_rate: float | None = None
    voice_style: str | None = None
    reason: str | None = None
    detected_lang: str | None = None


class JobError(Model):
    code: str
    message: str
    details: dict[str, Any] | None = None


class RoomMember(Model):
    session_id: str
    display_name: str | None = None
    preferred_lang: LangCode | None = None
