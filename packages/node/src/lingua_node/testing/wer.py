"""Word error rate over normalised words (lower case, no punctuation), by edit distance; and
character edits for languages written without spaces (Chinese: character error rate)."""

from __future__ import annotations

import re


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def word_edits(reference: str, hypothesis: str) -> tuple[int, int]:
    """(word edits from reference to hypothesis, words in the reference)."""
    return _edits(words(reference), words(hypothesis))


def characters(text: str) -> list[str]:
    """Letters and digits, lower case; punctuation and spaces dropped (of any script)."""
    return [c for c in text.lower() if c.isalnum()]


def char_edits(reference: str, hypothesis: str) -> tuple[int, int]:
    """(character edits from reference to hypothesis, characters in the reference)."""
    return _edits(characters(reference), characters(hypothesis))


def _edits(ref: list[str], hyp: list[str]) -> tuple[int, int]:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1], len(ref)


def wer(reference: str, hypothesis: str) -> float:
    edits, count = word_edits(reference, hypothesis)
    return edits / max(1, count)
