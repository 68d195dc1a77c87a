"""Building the job of one utterance for one target language, from a whole `utterance` or
from a streamed one: one place, so both modes fill a job the same way."""

from __future__ import annotations

import functools

from lingua_protocol import AudioData, AudioFormat, FeatureFlags, PipelineConfig

from .jobs import Job
from .rooms import Room
from .selection import JobNeeds
from .sessions import Session


@functools.cache
def shared_pipeline(use_asr: bool, use_nmt: bool, use_tts: bool) -> PipelineConfig:
    """One shared, never mutated config per combination: a job needs no copy of its own."""
    return PipelineConfig(use_asr=use_asr, use_nmt=use_nmt, use_tts=use_tts)


def new_job(
    job_id: str,
    session: Session,
    index: int,
    src: str,
    lang: str,
    pipeline: PipelineConfig,
    features: FeatureFlags | None,
    dialect: str | None,
    audio: AudioData,
    audio_format: AudioFormat,
    sample_rate: int,
    audio_s: float,
    room: Room | None,
    primary: bool,
    now: float,
) -> Job:
    """The job for `lang`; in a room, the members who want `lang` listen to it."""
    use_nmt = pipeline.use_nmt and lang != src
    job = Job(
        job_id=job_id,
        session_id=session.session_id,
        utterance_index=index,
        src_lang=src,
        tgt_lang=lang,
        pipeline=shared_pipeline(pipeline.use_asr, use_nmt, pipeline.use_tts),
        features=features,
        dialect=dialect,
        audio=audio,
        audio_format=audio_format,
        sample_rate=sample_rate,
        audio_s=audio_s,
        audio_bytes=len(audio),
        needs=JobNeeds(
            src,
            lang,
            pipeline.use_tts,
            use_nmt,
            frozenset(features.requested()) if features else frozenset(),
            session.paired_node_id,
        ),
        created_at=now,
        primary=primary,
    )
    if room is not None:
        job.room_code = room.code
        job.listeners = room.members_with(lang, exclude=session.session_id)
        job.speaker_name = room.members[session.session_id].display_name
    return job
