"""Value objects nested inside messages: features, pipeline, models, capabilities, usage."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ._base import (
    MAX_GPUS,
    MAX_LANGUAGE_PAIRS,
    MAX_LANGUAGES,
    IdText,
    LangCode,
    Model,
    NonNegInt,
    SourceLang,
    Text,
)


class FeatureFlags(Model):
    """Optional analysis modules a session asks for or a node supports."""

    emotion_detection: bool | None = None
    voice_style_detection: bool | None = None
    speech_rate_detection: bool | None = None
    speech_rate_control: bool | None = None
    """Speech synthesis follows the speaker's measured rate (within 0.7x to 1.4x of the
    voice's own pace); the factor used comes back in `extra.tts_rate`."""
    enable_streaming_asr: bool | None = None
    """A node: it recognises streamed audio incrementally and sends `asr_partial`s."""
    partial_update_interval_ms: NonNegInt | None = None
    """A node: its default interval between partials when a job states none."""

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

    model_id: IdText
    kind: IdText
    src_lang: IdText | None = None
    tgt_lang: IdText | None = None
    languages: list[IdText] | None = Field(default=None, max_length=MAX_LANGUAGES)
    dialect: IdText | None = None
    version: IdText | None = None
    enabled: bool | None = None
    engine: IdText | None = None


class GpuInfo(Model):
    name: IdText
    memory_gb: float | None = None


class HardwareInfo(Model):
    cpu_cores: NonNegInt | None = None
    memory_gb: float | None = None
    gpus: list[GpuInfo] | None = Field(default=None, max_length=MAX_GPUS)


class ResourceUsage(Model):
    """Load figures a node reports in its heartbeat (percentages 0-100)."""

    cpu_percent: float | None = None
    gpu_percent: float | None = None
    gpu_mem_percent: float | None = None
    mem_percent: float | None = None
    running_jobs: NonNegInt | None = None


class InstalledService(Model):
    """Capability schema v2: one running service (ASR, NMT, TTS, VAD, ...)."""

    service_id: IdText
    type: IdText
    device: IdText | None = None
    status: IdText | None = None
    model_id: IdText | None = None
    version: IdText | None = None


class CapabilityByType(Model):
    """Capability schema v2: whether the node can run a stage type right now."""

    type: IdText
    ready: bool
    reason: Text | None = None


class LanguagePair(Model):
    src: SourceLang
    tgt: LangCode


class LanguageCapabilities(Model):
    """Capability schema v2: the languages a node serves.

    `supported_language_pairs` are the translation paths (text NMT pairs and speech
    translation, e.g. any -> en). `asr_languages`/`tts_languages`, when absent, are taken from
    the pairs' sources and targets.
    """

    supported_language_pairs: list[LanguagePair] | None = Field(
        default=None, max_length=MAX_LANGUAGE_PAIRS
    )
    asr_languages: list[SourceLang] | None = Field(default=None, max_length=MAX_LANGUAGES)
    tts_languages: list[LangCode] | None = Field(default=None, max_length=MAX_LANGUAGES)
    nmt_pairs: list[LanguagePair] | None = Field(default=None, max_length=MAX_LANGUAGE_PAIRS)
    speech_translation_targets: list[LangCode] | None = Field(
        default=None, max_length=MAX_LANGUAGES
    )


class ServiceTimings(Model):
    """Wall time spent in each stage of one job, in milliseconds."""

    vad_ms: float | None = None
    asr_ms: float | None = None
    nmt_ms: float | None = None
    tts_ms: float | None = None
    total_ms: float | None = None


class ResultExtra(Model):
    """Outputs of optional modules; absent or null when not computed."""

    emotion: IdText | None = None
    speech_rate: float | None = None
    voice_style: IdText | None = None
    reason: Text | None = None
    detected_lang: IdText | None = None
    asr_model: IdText | None = None
    """The speech recogniser (model id) that heard the utterance, when a node has several."""
    tts_rate: float | None = None
    """The pace factor the speech was synthesised at when `speech_rate_control` was asked
    (1.0 the voice's own pace, above 1 faster)."""


class JobError(Model):
    code: IdText
    message: Text
    details: dict[str, Any] | None = None


class RoomMember(Model):
    session_id: str
    display_name: str | None = None
    preferred_lang: LangCode | None = None
