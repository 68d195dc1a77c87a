from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
from lingua_node._audio_decode import decode_audio
from lingua_protocol import ErrorCode, ProtocolError, float32_to_pcm16, wav_bytes

TONE = (0.3 * np.sin(2 * np.pi * 440 * np.arange(22050) / 22050)).astype(np.float32)


def test_pcm16_at_any_rate_becomes_16k_mono() -> None:
    out = decode_audio(float32_to_pcm16(TONE), "pcm16", 22050)
    assert out.dtype == np.float32
    assert abs(out.size - 16000) <= 2


def test_wav_is_read_with_its_own_rate() -> None:
    out = decode_audio(wav_bytes(TONE, 22050), "wav", 16000)
    assert abs(out.size - 16000) <= 2
    assert 0.2 < np.abs(out).max() < 0.35


def _ogg_opus(samples: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=48000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(
            (samples * 32767).astype(np.int16)[None, :], format="s16", layout="mono"
        )
        frame.sample_rate = rate
        resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
        for f in resampler.resample(frame):
            for packet in stream.encode(f):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()


def test_ogg_opus_is_decoded_with_pyav() -> None:
    out = decode_audio(_ogg_opus(TONE, 22050), "opus", 16000)
    assert abs(out.size - 16000) < 1600
    assert np.abs(out).max() > 0.1


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (b"\x01\x02\x03", "pcm16"),
        (b"RIFF\x00\x00\x00\x00WAVEjunk", "wav"),
        (b"OggS" + bytes(100), "ogg"),
        (Path(__file__).read_bytes()[:500], "opus"),
    ],
)
def test_undecodable_audio_is_audio_decode_failed(data: bytes, fmt: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_audio(data, fmt, 16000)
    assert info.value.code == ErrorCode.AUDIO_DECODE_FAILED
