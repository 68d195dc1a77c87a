"""Translation of a stream's committed prefix as it grows, one sentence at a time.

The committed text only ever grows, so its finished sentences never change: each is
translated once and kept; only the sentence still being said is translated again when it
grows. Translating the whole prefix at every partial would cost more with every sentence
of a long utterance.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

_SENTENCE = re.compile(r".+?(?:[.!?。！？]+(?=\s|$)|$)", re.S)


def sentences(text: str) -> list[str]:
    """`text` split after each sentence end (the last piece may be unfinished)."""
    return [s.strip() for s in _SENTENCE.findall(text.strip()) if s.strip()]


@dataclass
class PrefixTranslator:
    """`translate`: one text model call (blocking; called on the stream's worker thread)."""

    translate: Callable[[str], str]
    joiner: str = " "
    """Between translated sentences (no space for Chinese, Japanese and Thai targets)."""
    _done: list[str] = field(default_factory=list)
    """Translations of the finished sentences, in order."""
    _done_count: int = 0
    _last_source: str = ""
    _last: str = ""

    def translated(self, stable_text: str) -> str:
        """The translation of `stable_text` (a committed prefix: it only ever grows)."""
        if stable_text == self._last_source:
            return self._last
        parts = sentences(stable_text)
        finished = parts if _ends_sentence(stable_text) else parts[:-1]
        for sentence in finished[self._done_count :]:
            self._done.append(self.translate(sentence))
        self._done_count = max(self._done_count, len(finished))
        rest = parts[len(finished) :]
        pieces = self._done + [self.translate(s) for s in rest]
        self._last_source = stable_text
        self._last = self.joiner.join(p for p in pieces if p)
        return self._last


def _ends_sentence(text: str) -> bool:
    return text.rstrip().endswith((".", "!", "?", "。", "！", "？"))
