"""Audio helpers shared by node and client: PCM16 <-> float32, WAV files, resampling."""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

TARGET_RATE_HZ = 16_000
"""The rate ASR and VAD work at, and the default rate of uploaded utterances."""

FloatAudio = npt.NDArray[np.float32]


def pcm16_to_float32(pcm: bytes) -> FloatAudio:
    """Little-endian signed 16-bit samples to float32 in [-1, 1)."""
    if len(pcm) % 2:
        pcm = pcm[:-1]
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def float32_to_pcm16(samples: npt.NDArray[Any]) -> bytes:
    """Float samples in [-1, 1] to little-endian PCM16 bytes (clipped)."""
    clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    return (clipped * 32767.0).astype("<i2").tobytes()


def read_wav(source: str | Path | bytes) -> tuple[FloatAudio, int]:
    """Read a PCM WAV (8/16/32-bit) into mono float32 and its sample rate."""
    handle: Any = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    with wave.open(handle, "rb") as wav:
        channels = wav.getnchannels()
        width = wav.getsampwidth()
        rate = wav.getframerate()
        frames = wav.readframes(wav.getnframes())
    if width == 2:
        data = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 1:
        data = (np.frombuffer(frames, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 4:
        data = np.frombuffer(frames, dtype="<i4").astype(np.float32) / 2147483648.0
    else:
        raise ValueError(f"unsupported WAV sample width: {width} bytes")
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).astype(np.float32)
    return data, rate


def wav_bytes(samples: npt.NDArray[Any], sample_rate_hz: int) -> bytes:
    """Mono float samples as a 16-bit PCM WAV file in memory."""
    return pcm16_wav_bytes(float32_to_pcm16(samples), sample_rate_hz)


def pcm16_wav_bytes(pcm: bytes, sample_rate_hz: int) -> bytes:
    """Wrap mono PCM16 bytes in a WAV header."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate_hz)
        wav.writeframes(pcm)
    return buf.getvalue()


def write_wav(path: str | Path, samples: npt.NDArray[Any], sample_rate_hz: int) -> None:
    Path(path).write_bytes(wav_bytes(samples, sample_rate_hz))


def resample(
    samples: FloatAudio, from_rate_hz: int, to_rate_hz: int = TARGET_RATE_HZ
) -> FloatAudio:
    """Resample mono float32 audio with soxr (high quality); a no-op at equal rates."""
    if from_rate_hz == to_rate_hz or samples.size == 0:
        return samples.astype(np.float32, copy=False)
    import soxr

    out = soxr.resample(samples, from_rate_hz, to_rate_hz)
    return np.asarray(out, dtype=np.float32)


def to_mono_16k(samples: npt.NDArray[Any], sample_rate_hz: int) -> FloatAudio:
    """Any float array (mono, or frames x channels) to mono float32 at 16 kHz."""
    data = np.asarray(samples, dtype=np.float32)
    if data.ndim == 2:
        data = data.mean(axis=1).astype(np.float32)
    return resample(data, sample_rate_hz, TARGET_RATE_HZ)


def pcm16_duration_s(size_bytes: int, sample_rate_hz: int, channels: int = 1) -> float:
    return size_bytes / (2 * channels * sample_rate_hz)


def message_audio_duration_s(audio: bytes, audio_format: str, sample_rate_hz: int) -> float | None:
    """Duration of a message's audio: exact for pcm16 and wav, None when unknown (opus/ogg)."""
    if audio_format == "pcm16":
        return pcm16_duration_s(len(audio), sample_rate_hz)
    if audio_format == "wav":
        try:
            with wave.open(io.BytesIO(audio), "rb") as wav:
                return wav.getnframes() / float(wav.getframerate())
        except (wave.Error, EOFError, ZeroDivisionError):
            return None
    return None
