"""Word error rate over normalised words (lower case, no punctuation), by edit distance."""

from __future__ import annotations

import re


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def word_edits(reference: str, hypothesis: str) -> tuple[int, int]:
    """(word edits from reference to hypothesis, words in the reference)."""
    ref, hyp = words(reference), words(hypothesis)
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
