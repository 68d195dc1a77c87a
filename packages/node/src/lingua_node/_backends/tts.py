"""Text to speech: Piper voices where installed, espeak-ng for every other language it knows.

Audio comes back as PCM16 at the voice's own sample rate, which the result states in
`tts_sample_rate`; resampling here would only lose quality the player can keep.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path

from lingua_protocol import float32_to_pcm16, read_wav

from .interfaces import Speech, Voice


class PiperTTS:
    engine = "piper"

    def __init__(self, voice_onnx: Path) -> None:
        from piper.voice import PiperVoice

        self.model_id = voice_onnx.stem
        config = json.loads(Path(f"{voice_onnx}.json").read_text())
        code = config.get("language", {}).get("code") or config["espeak"]["voice"]
        self.language = str(code).replace("_", "-").split("-")[0].lower()
        self.voice = PiperVoice.load(voice_onnx)
        self.sample_rate = int(self.voice.config.sample_rate)
        self._lock = threading.Lock()

    def languages(self) -> list[str]:
        return [self.language]

    def speak(self, text: str, lang: str, *, rate: float = 1.0) -> Speech:
        config = None
        if rate != 1.0:  # Piper's length_scale is a duration: faster speech, smaller scale
            from piper import SynthesisConfig

            base = float(getattr(self.voice.config, "length_scale", 1.0) or 1.0)
            config = SynthesisConfig(length_scale=base / rate)
        with self._lock:  # phonemizer state is shared; synthesis itself is short
            chunks = list(self.voice.synthesize(text, syn_config=config))
        pcm = b"".join(c.audio_int16_bytes for c in chunks)
        rate = chunks[0].sample_rate if chunks else self.sample_rate
        return Speech(pcm, rate)


# espeak-ng names some languages differently from ISO 639-1 / Whisper
_ESPEAK_ALIASES = {"cmn": "zh", "yue": "yue"}


class EspeakTTS:
    engine = "espeak-ng"
    model_id = "espeak-ng"

    def __init__(self, binary: str | None = None) -> None:
        found = binary or shutil.which("espeak-ng")
        if not found:
            raise FileNotFoundError("espeak-ng is not installed (apt-get install espeak-ng)")
        self.binary = found
        self._voices = self._list_voices()

    def _list_voices(self) -> dict[str, str]:
        out = subprocess.run(
            [self.binary, "--voices"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
        voices: dict[str, str] = {}
        for line in out.splitlines()[1:]:
            cols = line.split()
            if len(cols) < 2:
                continue
            voice = cols[1]
            base = voice.split("-")[0].lower()
            lang = _ESPEAK_ALIASES.get(base, base)
            if len(lang) in (2, 3) and lang.isalpha():
                voices.setdefault(lang, voice)
        return voices

    def languages(self) -> list[str]:
        return sorted(self._voices)

    DEFAULT_WPM = 175  # espeak-ng's own default speed

    def speak(self, text: str, lang: str, *, rate: float = 1.0) -> Speech:
        voice = self._voices.get(lang, lang)
        wpm = str(round(self.DEFAULT_WPM * rate))
        wav = subprocess.run(
            [self.binary, "-v", voice, "-s", wpm, "--stdout"],
            input=text.encode("utf-8"),
            capture_output=True,
            timeout=60,
            check=True,
        ).stdout
        samples, sample_rate = read_wav(wav)
        return Speech(float32_to_pcm16(samples), sample_rate)


class TTSRouter:
    """Piper first for the languages it has a voice for, espeak-ng for the rest."""

    def __init__(self, voices: list[Voice]) -> None:
        self.voices = voices

    def languages(self) -> list[str]:
        return sorted({lang for v in self.voices for lang in v.languages()})

    def voice_for(self, lang: str) -> Voice | None:
        return next((v for v in self.voices if lang in v.languages()), None)

    def speak(self, text: str, lang: str) -> tuple[Speech, Voice]:
        voice = self.voice_for(lang)
        if voice is None:
            raise LookupError(f"no TTS voice for {lang}")
        return voice.speak(text, lang), voice
