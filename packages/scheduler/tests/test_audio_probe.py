"""The scheduler reads an utterance's length from its first few KiB only."""

from __future__ import annotations

import base64
import io
import wave

import pytest
from lingua_protocol import AudioData
from lingua_scheduler._core.audio_probe import HEAD_B64_CHARS, duration_s


def _wav(seconds: float, rate: int = 16000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"\x00\x00" * int(seconds * rate))
    return out.getvalue()


def test_a_wav_length_comes_from_its_header_whatever_follows() -> None:
    data = base64.b64encode(_wav(3.0)).decode()
    tail_broken = data[: HEAD_B64_CHARS * 2] + "@@@@" + data[HEAD_B64_CHARS * 2 + 4 :]
    assert duration_s(AudioData.from_base64(data), "wav", 16000) == 3.0
    # Past the head nothing is decoded here: bad base64 there is the node's to report.
    assert duration_s(AudioData.from_base64(tail_broken, verify=False), "wav", 16000) == 3.0
    assert duration_s(AudioData.from_bytes(_wav(2.0)), "wav", 16000) == 2.0


def test_a_header_cannot_claim_more_audio_than_there_is() -> None:
    wav = bytearray(_wav(1.0))
    wav[40:44] = (10**9).to_bytes(4, "little")  # the data chunk claims 10^9 bytes
    assert duration_s(AudioData.from_bytes(bytes(wav)), "wav", 16000) == pytest.approx(1.0, 0.01)


def test_a_wav_head_that_is_not_base64_is_refused_and_other_formats_need_no_decoding() -> None:
    with pytest.raises(ValueError, match="not base64"):
        duration_s(AudioData.from_base64("abc", verify=False), "wav", 16000)
    assert duration_s(AudioData.from_base64("AAAA"), "wav", 16000) is None  # not a WAV
    assert duration_s(AudioData.from_base64("@@@@", verify=False), "opus", 16000) is None
    assert duration_s(AudioData.from_bytes(b"\x00" * 64000), "pcm16", 16000) == 2.0
