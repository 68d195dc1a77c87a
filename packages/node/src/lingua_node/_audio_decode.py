"""Turn a job's audio, in any format the protocol allows, into 16 kHz mono float32.

Every failure becomes AUDIO_DECODE_FAILED: a node must answer bad audio with a code the
scheduler understands (and will not retry elsewhere), never with a traceback.
"""

from __future__ import annotations

import io

import numpy as np
from lingua_protocol import (
    ErrorCode,
    FloatAudio,
    ProtocolError,
    pcm16_to_float32,
    read_wav,
    to_mono_16k,
)

MAX_SECONDS = 120.0


def decode_audio(data: bytes, audio_format: str, sample_rate: int) -> FloatAudio:
    try:
        if audio_format == "pcm16":
            if len(data) % 2:
                raise ValueError(f"pcm16 audio has an odd byte count ({len(data)})")
            samples, rate = pcm16_to_float32(data), sample_rate
        elif audio_format == "wav":
            samples, rate = read_wav(data)
        elif audio_format in ("opus", "ogg"):
            samples, rate = _decode_with_av(data), 16000
        else:
            raise ValueError(f"unknown audio format {audio_format!r}")
        if samples.size and not np.isfinite(samples).all():
            raise ValueError("audio contains NaN or infinite samples")
        if samples.size / rate > MAX_SECONDS:
            raise ValueError(f"audio longer than {MAX_SECONDS:.0f} s")
        return to_mono_16k(samples, rate)
    except ProtocolError:
        raise
    except Exception as exc:  # wave.Error, av.error.*, ValueError: all mean the same to a peer
        raise ProtocolError(
            ErrorCode.AUDIO_DECODE_FAILED, f"cannot decode {audio_format} audio: {exc}", "audio"
        ) from exc


def _decode_with_av(data: bytes) -> FloatAudio:
    from faster_whisper.audio import decode_audio as av_decode

    samples = av_decode(io.BytesIO(data), sampling_rate=16000)
    return np.asarray(samples, dtype=np.float32)
