"""Regenerate the committed non-English test speech with espeak-ng (Piper has no Spanish voice
in the packages we can install): 16 kHz mono WAVs next to foreign.json.

    python tests/data/speech/make_foreign_speech.py
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from lingua_protocol import read_wav, to_mono_16k, write_wav

HERE = Path(__file__).parent


def main() -> None:
    for item in json.loads((HERE / "foreign.json").read_text()):
        wav = subprocess.run(
            ["espeak-ng", "-v", item["voice"], "-s", "140", "--stdout", item["text"]],
            capture_output=True,
            check=True,
        ).stdout
        samples, rate = read_wav(wav)
        write_wav(HERE / item["file"], to_mono_16k(samples, rate), 16000)
        print(item["file"])


if __name__ == "__main__":
    main()
