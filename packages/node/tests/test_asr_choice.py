"""The rule that picks a speech recogniser per utterance, over scripted test doubles (no
Whisper, no files)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from lingua_node._asr_choice import AsrOption, ASRRouter, asr_models, choose_recognizer
from lingua_node._backends.interfaces import Transcript

ALL = ["de", "en", "es", "zh"]


@dataclass
class ScriptedRecognizer:
    """A test double: records the calls it gets and answers with its own id."""

    model_id: str
    engine: str = "scripted"
    languages: list[str] = field(default_factory=lambda: list(ALL))
    multilingual: bool = True
    calls: list[tuple[str | None, str]] = field(default_factory=list)

    def transcribe(
        self, audio: object, language: str | None, *, task: str = "transcribe"
    ) -> Transcript:
        self.calls.append((language, task))
        return Transcript(self.model_id, language or "en", 1.0)


def option(
    model_id: str, published: list[str], size: int, *, multilingual: bool = True
) -> AsrOption:
    return AsrOption(
        ScriptedRecognizer(model_id, multilingual=multilingual), frozenset(published), size
    )


EMBEDDED = option("embedded", ALL, 100)
GERMAN = option("german", ["de"], 100)
LARGE = option("large", ALL, 900)


def picked(
    options: list[AsrOption], language: str | None, task: str = "transcribe", pin: str | None = None
) -> str | None:
    chosen = choose_recognizer(options, language, task, pin)
    return None if chosen is None else chosen.recognizer.model_id


def test_a_model_published_for_the_language_beats_a_general_one() -> None:
    assert picked([EMBEDDED, GERMAN, LARGE], "de") == "german"
    assert picked([EMBEDDED, GERMAN, LARGE], "en") == "large"  # german is not for English


def test_larger_beats_smaller_then_the_order_of_loading() -> None:
    assert picked([EMBEDDED, LARGE], "es") == "large"
    twin = option("twin", ALL, 100)
    assert picked([EMBEDDED, twin], "es") == "embedded"


def test_auto_detection_prefers_the_general_multilingual_model() -> None:
    english_only = option("english-only", ["en"], 5000, multilingual=False)
    assert picked([english_only, GERMAN, EMBEDDED], None) == "embedded"
    assert picked([english_only, GERMAN, EMBEDDED], "auto") == "embedded"


def test_speech_translation_needs_a_multilingual_model() -> None:
    english_only = option("english-only", ["en"], 5000, multilingual=False)
    assert picked([english_only, EMBEDDED], "en", task="translate") == "embedded"
    assert picked([english_only], "en", task="translate") is None


def test_the_operators_pin_wins_where_it_serves() -> None:
    assert picked([EMBEDDED, GERMAN, LARGE], "de", pin="embedded") == "embedded"
    assert picked([EMBEDDED, GERMAN, LARGE], "en", pin="german") == "large"


def test_the_router_sends_each_call_to_its_choice_and_advertises_the_union() -> None:
    router = ASRRouter([option("en-only", ["en"], 1, multilingual=False), GERMAN])
    assert router.languages == ["de", "en"]
    assert router.multilingual
    assert router.model_id == "en-only"
    audio = np.zeros(1600, dtype=np.float32)
    assert router.transcribe(audio, "de").text == "german"
    assert router.transcribe(audio, "en").text == "en-only"
    with pytest.raises(LookupError):
        router.transcribe(audio, "zh")
    assert [o.recognizer.model_id for o in asr_models(router)] == ["en-only", "german"]
