"""Speech synthesis at the speaker's pace (`features.speech_rate_control`).

The node measures how fast the speaker talks (`pipeline.speech_rate`: words per second, or
characters per second for Chinese, Japanese and Korean). Divided by a typical conversational
pace for that kind of language it gives a pace factor, which the voice applies: Piper by
dividing its `length_scale`, espeak-ng by scaling its 175 words-per-minute default. The
factor is clamped to 0.7x-1.4x: beyond that, synthetic speech becomes hard to follow, and a
rate measured over one short utterance (a long pause, a single word) is not trustworthy.
"""

from __future__ import annotations

WORDS_PER_S = 2.5
"""A typical conversational pace for languages written with spaces (150 words a minute)."""
CHARACTERS_PER_S = 4.5
"""A typical conversational pace in characters (syllables) for Chinese, Japanese, Korean."""
MIN_FACTOR = 0.7
MAX_FACTOR = 1.4
CHARACTER_LANGUAGES = frozenset({"zh", "ja", "yue", "ko"})


def pace_factor(rate: float | None, lang: str | None) -> float:
    """The pace factor for a speaker measured at `rate` units per second in `lang`: 1.0 (the
    voice's own pace) when nothing could be measured, else rate / typical, clamped."""
    if rate is None or rate <= 0:
        return 1.0
    typical = CHARACTERS_PER_S if lang in CHARACTER_LANGUAGES else WORDS_PER_S
    return round(min(MAX_FACTOR, max(MIN_FACTOR, rate / typical)), 2)
