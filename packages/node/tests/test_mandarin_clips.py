"""The committed Mandarin speech the benchmark measures character error rate on, and the
character count behind that rate."""

from __future__ import annotations

import json
import wave
from pathlib import Path

from lingua_node.testing.wer import char_edits

SPEECH = Path(__file__).resolve().parents[3] / "tests" / "data" / "speech"


def test_every_mandarin_clip_is_a_short_16_khz_mono_wav_with_its_text() -> None:
    items = json.loads((SPEECH / "mandarin.json").read_text())
    assert len(items) >= 5
    for item in items:
        assert item["lang"] == "zh"
        assert item["text"]
        assert item["pinyin"]
        with wave.open(str(SPEECH / item["file"])) as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
            assert 1.0 <= wav.getnframes() / 16000 <= 6.0, item["file"]


def test_character_edits_count_chinese_characters_and_ignore_punctuation() -> None:
    assert char_edits("我想预订明天的酒店。", "我想预定明天的Q点") == (3, 9)
    assert char_edits("今天天气很好。", "今天 天气 很好!") == (0, 6)
