"""The self-test: every backend does one small piece of real work before it is advertised.

A model that loads is not a model that runs. CTranslate2 loads Whisper on a GPU whose CUDA
libraries are missing and fails only at the first transcription; an ONNX voice can load and
fail at its first synthesis. So the loader runs each backend once, on its own device, on a
built-in clip (3.6 s of English speech, `data/selftest.ogg`, decoded once) or a short text,
and advertises only what passed. The test catches a backend that cannot run (missing
libraries, out of memory, an unsupported compute type), not a model that runs badly: the
transcript's words are not checked, since a model may be published for one language only.

Each check raises what the backend raised; the caller decides (fall back to the CPU or
withhold the model).
"""

from __future__ import annotations

import functools
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import resources

from lingua_protocol import FloatAudio

from ._audio_decode import decode_audio
from ._backends.interfaces import Recognizer, Translator, Voice, VoiceActivity

CLIP_FILE = "selftest.ogg"
CLIP_TEXT = "The weather today is sunny with a light breeze from the west."
SAMPLE_TEXT = "Hello."


@functools.cache
def builtin_clip() -> FloatAudio:
    """The built-in clip as 16 kHz mono float32 (about 3.6 s)."""
    data = resources.files("lingua_node").joinpath("data", CLIP_FILE).read_bytes()
    return decode_audio(data, "ogg", 16000)


def check_recognizer(recognizer: Recognizer) -> None:
    """One transcription of the clip, in English when the model serves it, else in its first
    language (a speech recogniser must run whatever the words)."""
    languages = list(recognizer.languages)
    language = "en" if "en" in languages or not languages else languages[0]
    recognizer.transcribe(builtin_clip(), language)


def check_translator(translator: Translator) -> None:
    """One translation of a short sentence, for the model's first pair."""
    if translator.pairs:
        src, tgt = translator.pairs[0]
        translator.translate(SAMPLE_TEXT, src, tgt)


def check_voice(voice: Voice) -> None:
    """One short synthesis in the voice's first language; it must produce samples."""
    languages = voice.languages()
    if not languages:
        return
    speech = voice.speak(SAMPLE_TEXT, "en" if "en" in languages else languages[0])
    if not speech.pcm16:
        raise RuntimeError(f"voice {voice.model_id} produced no audio")


def check_vad(vad: VoiceActivity) -> None:
    vad.speech(builtin_clip())


def clip_seconds() -> float:
    return builtin_clip().size / 16000


def full_load_seconds(recognizer: Recognizer, jobs: int) -> float:
    """The slowest of `jobs` simultaneous transcriptions of the clip, in seconds: what one
    job takes on a node running `jobs` at once (`concurrency.calibrated_max_jobs`)."""

    def one(_: int) -> float:
        started = time.perf_counter()
        check_recognizer(recognizer)
        return time.perf_counter() - started

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="lingua-calibrate") as pool:
        return max(pool.map(one, range(jobs)))
