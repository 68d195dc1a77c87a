"""Regenerate the committed Mandarin test speech with espeak-ng: 16 kHz mono WAVs next to
mandarin.json. espeak-ng's `cmn` dictionary lacks many characters (it spells their pinyin,
tone digits read in English), so each sentence is spoken from its tone-numbered pinyin with
the `cmn-latn-pinyin` voice. The speech is synthetic and robotic (no tone sandhi, flat
prosody): accuracy on it says how Whisper copes with such speech, not with people.

    python tests/data/speech/make_mandarin_speech.py
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from lingua_protocol import read_wav, to_mono_16k, write_wav

HERE = Path(__file__).parent


def main() -> None:
    for item in json.loads((HERE / "mandarin.json").read_text()):
        wav = subprocess.run(
            ["espeak-ng", "-v", "cmn-latn-pinyin", "-s", "140", "--stdout", item["pinyin"]],
            capture_output=True,
            check=True,
        ).stdout
        samples, rate = read_wav(wav)
        write_wav(HERE / item["file"], to_mono_16k(samples, rate), 16000)
        print(item["file"])


if __name__ == "__main__":
    main()
