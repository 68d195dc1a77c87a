"""Silero VAD (the ONNX model faster-whisper ships) to cut silence before ASR: Whisper invents
words for silence and noise, so audio without speech must never reach it."""

from __future__ import annotations

import threading

import numpy as np
from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps
from lingua_protocol import FloatAudio

SAMPLE_RATE = 16000
END_SILENCE_MS = 100
"""Silence that ends speech for `speech_span` (the whole-utterance cut keeps pauses up to
500 ms inside speech; a streamed utterance's end must be found 150 ms after the last word)."""


class SileroVAD:
    engine = "silero-onnx"

    def __init__(self, threshold: float = 0.5, pad_ms: int = 200) -> None:
        self.options = VadOptions(
            threshold=threshold, min_silence_duration_ms=500, speech_pad_ms=pad_ms
        )
        self.end_options = VadOptions(
            threshold=threshold, min_silence_duration_ms=END_SILENCE_MS, speech_pad_ms=0
        )
        self._lock = threading.Lock()  # the ONNX session keeps recurrent state per call
        self.speech(np.zeros(SAMPLE_RATE // 2, dtype=np.float32))  # load now, not on a job

    def speech(self, audio: FloatAudio) -> FloatAudio:
        """The speech in `audio`, silences between phrases shortened; empty when there is none."""
        if audio.size < SAMPLE_RATE // 10:
            return np.zeros(0, dtype=np.float32)
        with self._lock:
            stamps = get_speech_timestamps(audio, self.options, sampling_rate=SAMPLE_RATE)
        if not stamps:
            return np.zeros(0, dtype=np.float32)
        chunks, _ = collect_chunks(audio, stamps, sampling_rate=SAMPLE_RATE)
        return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)

    def speech_span(self, audio: FloatAudio) -> tuple[int, int] | None:
        """Where the first speech in `audio` starts and the last ends (samples, without
        padding; a pause of `END_SILENCE_MS` ends speech), None when there is none. For
        streaming recognition (`lingua_node._streaming.recognizer`), which cuts the silence
        before and after speech itself, keeping word times on the utterance's clock."""
        if audio.size < SAMPLE_RATE // 10:
            return None
        with self._lock:
            stamps = get_speech_timestamps(audio, self.end_options, sampling_rate=SAMPLE_RATE)
        if not stamps:
            return None
        return int(stamps[0]["start"]), min(int(stamps[-1]["end"]), audio.size)
