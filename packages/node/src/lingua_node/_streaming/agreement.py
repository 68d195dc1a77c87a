"""The stable-prefix policy of streaming recognition: LocalAgreement-2.

Whisper re-decodes a growing buffer, and its hypothesis for the newest half second changes
from one pass to the next. A word is committed (shown as final, never taken back) once two
consecutive hypotheses agree on it and on everything before it: the longest common word
prefix of the last two hypotheses, as in whisper_streaming (Macháček et al., 2023). Two
passes are the least that can tell a guess from a settled word; three would hold every word
back for one more interval, and one (trust each pass) shows words that later change.

Plain state, no audio, no model: words in, committed words out. Word times are seconds from
the start of the utterance, so a hypothesis over a trimmed buffer is comparable with the
words committed before the trim.
"""

from __future__ import annotations

import itertools
import string
from dataclasses import dataclass, field

from .._backends.interfaces import Word

OVERLAP_SLACK_S = 0.1
"""A new word that starts up to this long before the last committed word ended may still be
new (word timestamps are that coarse); anything earlier was already committed."""
MAX_OVERLAP_WORDS = 5
"""Longest run of committed words a new hypothesis may repeat at its start, starting within
`OVERLAP_SLACK_S` of their end (Whisper hears the end of the last committed word again
after the buffer was cut there)."""

_PUNCTUATION = str.maketrans("", "", string.punctuation + "¿¡«»“”‘’…")


def same_word(a: str, b: str) -> bool:
    """Equal once case, spacing and punctuation are ignored: "today," and "Today" agree, so a
    comma that comes and goes does not hold a word back."""
    return a.strip().lower().translate(_PUNCTUATION) == b.strip().lower().translate(_PUNCTUATION)


def words_text(words: list[Word]) -> str:
    """Words as Whisper wrote them (each carries its own leading space) joined into a line."""
    return "".join(w.word for w in words).strip()


@dataclass
class LocalAgreement:
    """Commits the longest common prefix of the last two hypotheses.

    `committed`: words that will not change any more. `pending`: the newest hypothesis past
    them (the unstable tail, shown as a guess). Memory: `committed` grows with the utterance
    (bounded by the utterance's audio limit); `pending` is one hypothesis.
    """

    min_context_s: float = 0.0
    """A word is committed only when the earlier of the two agreeing passes had heard at
    least this much audio after it: two passes that both end just after a word agree on
    the same guess ("water" for "weather", "she" for "She" before the sentence went on)."""
    committed: list[Word] = field(default_factory=list)
    pending: list[Word] = field(default_factory=list)
    pending_heard_s: float = float("inf")
    """How far into the utterance the pass that produced `pending` had heard (seconds)."""

    @property
    def committed_end_s(self) -> float:
        return self.committed[-1].end if self.committed else 0.0

    @property
    def stable_text(self) -> str:
        return words_text(self.committed)

    @property
    def text(self) -> str:
        return words_text(self.committed + self.pending)

    def insert(self, hypothesis: list[Word], heard_s: float = float("inf")) -> list[Word]:
        """A new hypothesis (utterance-relative times) of a pass that heard the utterance up
        to `heard_s`; returns the words it commits."""
        fresh = self.new_words(hypothesis)
        settled = self.pending_heard_s - self.min_context_s
        agreed = 0
        while (
            agreed < len(fresh)
            and agreed < len(self.pending)
            and same_word(fresh[agreed].word, self.pending[agreed].word)
            and self.pending[agreed].end <= settled
        ):
            agreed += 1
        newly = fresh[:agreed]
        self.committed.extend(newly)
        self.pending = fresh[agreed:]
        self.pending_heard_s = heard_s
        return newly

    def new_words(self, hypothesis: list[Word]) -> list[Word]:
        """The part of `hypothesis` past what is committed: words that start before the last
        committed word ended are dropped, then a repeat of the committed tail (1 to 5 words)
        at its start when that starts right at the committed end (Whisper heard the end of
        the last committed word again); a repeat that starts later was said again."""
        if not self.committed:
            return [w for w in hypothesis if w.word.strip()]
        end = self.committed_end_s
        fresh = [w for w in hypothesis if w.word.strip() and w.start > end - OVERLAP_SLACK_S]
        if not fresh or fresh[0].start > end:
            return fresh  # starts after the committed words: new, even if it repeats them
        longest = min(MAX_OVERLAP_WORDS, len(fresh), len(self.committed))
        for n in range(longest, 0, -1):
            tail = self.committed[-n:]
            if all(same_word(a.word, b.word) for a, b in zip(tail, fresh[:n], strict=True)):
                return fresh[n:]
        return fresh

    def close(self, final: list[Word]) -> list[Word]:
        """The last hypothesis of the utterance (nothing follows to agree with): all of it past
        the committed words is taken; returns those words."""
        tail = self.new_words(final)
        self.committed.extend(tail)
        self.pending = []
        return tail

    def commit_pending_before(self, time_s: float) -> list[Word]:
        """Commits the pending words that end before `time_s`, agreed or not: used only when
        the buffer must be cut and nothing agreed for a long time (see `StreamConfig`)."""
        keep = list(itertools.takewhile(lambda w: w.end <= time_s, self.pending))
        self.committed.extend(keep)
        self.pending = self.pending[len(keep) :]
        return keep
