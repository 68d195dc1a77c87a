"""How long an utterance is, read from as little of its audio as possible.

The scheduler never decodes audio it relays (nodes decode it strictly); the job timeout still
needs the utterance's length. For pcm16 that is the size. For WAV it is in the header, so only
the first few KiB of base64 are decoded: the cost per utterance does not grow with its size.
A peer's header cannot stretch the job timeout: the length is capped by what the audio's size
can hold.
"""

from __future__ import annotations

import binascii
import io
import struct
import wave

from lingua_protocol import AudioData, AudioFormat

HEAD_B64_CHARS = 8192
"""Base64 characters decoded to find a WAV header (6 KiB: RIFF, fmt and chunks before data)."""


def duration_s(audio: AudioData, audio_format: AudioFormat, sample_rate: int) -> float | None:
    """Seconds of audio, or None when unknown without decoding (opus, ogg, a WAV whose header
    does not fit the first 6 KiB). Raises ValueError when a WAV's head is not base64."""
    if audio_format == "pcm16":
        return len(audio) / (2 * sample_rate)
    if audio_format != "wav":
        return None
    head = _head(audio)
    try:
        with wave.open(io.BytesIO(head), "rb") as wav:
            rate, frames = wav.getframerate(), wav.getnframes()
            frame_bytes = wav.getnchannels() * wav.getsampwidth()
    except (wave.Error, EOFError, struct.error, ValueError, OverflowError):
        return None  # not a WAV the scheduler can read: the node will say so
    if rate <= 0 or frame_bytes <= 0:
        return None
    return min(frames, len(audio) // frame_bytes) / rate


def _head(audio: AudioData) -> bytes:
    if audio.is_raw:
        return audio.to_bytes()[: HEAD_B64_CHARS // 4 * 3]
    literal = audio.json_literal()
    body = memoryview(literal)[1:-1]
    try:
        return binascii.a2b_base64(bytes(body[:HEAD_B64_CHARS]), strict_mode=True)
    except binascii.Error as exc:
        raise ValueError(f"audio is not base64: {exc}") from None
