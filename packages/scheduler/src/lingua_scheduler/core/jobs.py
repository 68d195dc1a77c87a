"""Jobs and their attempts. A job is one utterance for one target language."""

from __future__ import annotations

from dataclasses import dataclass, field

from lingua_protocol import AudioData, FeatureFlags, JobAssign, PipelineConfig

from .selection import JobNeeds


@dataclass(slots=True)
class Job:
    job_id: str
    session_id: str
    utterance_index: int
    src_lang: str
    tgt_lang: str
    pipeline: PipelineConfig
    features: FeatureFlags | None
    dialect: str | None
    audio: AudioData
    audio_format: str
    sample_rate: int
    audio_s: float
    needs: JobNeeds
    created_at: float
    primary: bool = True
    listeners: list[str] = field(default_factory=list)
    room_code: str | None = None
    speaker_name: str | None = None
    state: str = "queued"
    attempt: int = 0
    attempt_id: str | None = None
    node_id: str | None = None
    deadline: float | None = None
    queued_at: float | None = None
    assigned_at: float | None = None
    tried: set[str] = field(default_factory=set)
    last_error: str = "NODE_UNAVAILABLE"

    def next_attempt(self) -> str:
        self.attempt += 1
        self.attempt_id = f"{self.job_id}.{self.attempt}"
        return self.attempt_id

    def assign_message(self, timeout_ms: int) -> JobAssign:
        return JobAssign(
            job_id=self.job_id,
            session_id=self.session_id,
            utterance_index=self.utterance_index,
            src_lang=self.src_lang,
            tgt_lang=self.tgt_lang,
            dialect=self.dialect,
            features=self.features,
            pipeline=self.pipeline,
            audio=self.audio,
            audio_format=self.audio_format,  # type: ignore[arg-type]
            sample_rate=self.sample_rate,
            attempt_id=self.attempt_id,
            timeout_ms=timeout_ms,
        )
