"""Engines by name, one line each, imported only when chosen.

The loader asks for an engine by the name in the node's settings (or a model's manifest), so the
heavy library behind it (faster-whisper, Piper, transformers) is imported only on nodes that use
it. To add an engine: write one module that implements an interface of `interfaces.py`, and add
one line to the table of its kind below.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Literal, overload

from .interfaces import Recognizer, Translator, Voice, VoiceActivity

Kind = Literal["vad", "asr", "nmt", "tts"]

ENGINES: dict[Kind, dict[str, str]] = {
    "vad": {"silero-onnx": "lingua_node._backends.vad:SileroVAD"},
    "asr": {"faster-whisper": "lingua_node._backends.asr:WhisperASR"},
    "nmt": {
        "transformers": "lingua_node._backends.nmt:TextTranslator",
        "ctranslate2": "lingua_node._backends.nmt:TextTranslator",
    },
    "tts": {
        "piper": "lingua_node._backends.tts:PiperTTS",
        "espeak-ng": "lingua_node._backends.tts:EspeakTTS",
    },
}


class UnknownEngine(LookupError):
    """No engine of that kind is registered under that name (a settings or manifest error)."""


def engine_names(kind: Kind) -> list[str]:
    return sorted(ENGINES[kind])


@overload
def engine_class(kind: Literal["vad"], name: str) -> Callable[..., VoiceActivity]: ...
@overload
def engine_class(kind: Literal["asr"], name: str) -> Callable[..., Recognizer]: ...
@overload
def engine_class(kind: Literal["nmt"], name: str) -> Callable[..., Translator]: ...
@overload
def engine_class(kind: Literal["tts"], name: str) -> Callable[..., Voice]: ...


def engine_class(kind: Kind, name: str) -> Any:
    """The class registered for `name`; imports its module on first use."""
    try:
        target = ENGINES[kind][name]
    except KeyError:
        known = ", ".join(engine_names(kind))
        raise UnknownEngine(f"no {kind} engine named {name!r} (known: {known})") from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
