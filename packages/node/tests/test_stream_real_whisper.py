"""Streaming recognition with the real models (Silero, Whisper base int8) on the committed
English speech, fed in 250 ms chunks with a pass every second of audio, as a live stream
would get at the default interval (no clock: the passes are driven by the audio fed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lingua_node._audio_decode import decode_audio
from lingua_node._pipeline import Pipeline
from lingua_node._streaming.recognizer import StreamConfig
from lingua_node._streaming.stream_job import StreamJob
from lingua_node.testing.wer import word_edits
from lingua_protocol import AudioData, JobAssign, PipelineConfig

CHUNK_S = 0.25


@pytest.fixture(scope="module")
def pipeline(backends) -> Pipeline:  # type: ignore[no-untyped-def]
    return Pipeline(backends, "node-under-test")


def job(audio: bytes, *, stream: bool) -> JobAssign:
    return JobAssign(
        job_id="job-1",
        attempt_id="a1",
        session_id="s1",
        utterance_index=0,
        src_lang="en",
        tgt_lang="en",
        audio=AudioData.from_bytes(audio),
        audio_format="pcm16",
        stream=stream,
        pipeline=PipelineConfig(use_tts=False),
    )


def pcm16(path: str) -> bytes:
    samples = decode_audio(Path(path).read_bytes(), "wav", 16000)
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def streamed(pipeline: Pipeline, pcm: bytes) -> tuple[str, list[str]]:
    """The final transcript and the partials' texts, for `pcm` fed chunk by chunk."""
    config = StreamConfig()
    chunk = int(CHUNK_S * 16000) * 2
    every = int(config.interval_ms / 1000 / CHUNK_S)
    first = int(config.first_update_ms / 1000 / CHUNK_S)
    stream = StreamJob.open(job(pcm[:chunk], stream=True), pipeline, "node-under-test", config)
    seen: list[str] = []
    for n, at in enumerate(range(chunk, len(pcm), chunk), start=1):
        stream.feed(AudioData.from_bytes(pcm[at : at + chunk]), "pcm16", 16000)
        if n + 1 >= first and (n + 1 - first) % every == 0:
            partial = stream.update()
            if partial is not None:
                seen.append(partial.text)
    result = stream.finish()
    assert result.success, result.error
    return result.text_asr or "", seen


def test_streamed_transcripts_equal_whole_utterance_ones_within_one_word_per_sentence(
    pipeline: Pipeline, speech_items: list[dict[str, str]]
) -> None:
    # Three clips here (about 2 s of test time each); tests/e2e/test_e2e_streaming.py checks
    # every committed clip through real processes.
    for item in [i for i in speech_items if i["lang"] == "en"][:3]:
        pcm = pcm16(item["path"])
        whole = pipeline.run(job(pcm, stream=False)).text_asr or ""
        final, seen = streamed(pipeline, pcm)
        edits, _ = word_edits(whole, final)
        assert edits <= 1, (item["file"], whole, final)
        assert seen, f"{item['file']}: no partial before the end"
        assert word_edits(item["text"], final)[0] <= 1, (item["file"], final)
