"""Which speech recogniser serves an utterance, when the node has several.

The node always has its embedded Whisper; every faster-whisper model installed from the hub is
loaded beside it. Per utterance the rule is (`choose_recognizer`):

1. Candidates are the models published for the utterance's language (the hub manifest's
   `languages`; a model published with none is taken to serve every language it knows). With
   no language given (`auto`) or for speech translation into English, any multilingual model.
2. The operator's pin (`LINGUA_NODE_ASR_MODEL`, a model id) wins among the candidates.
3. A model published for fewer languages wins: one published for that language beats a
   general one (`auto` prefers the general model, which detects the most languages).
4. Then the larger model (its files' total size), which is the more accurate of the same kind.
5. Then the order of loading: the embedded model first, then the store's order.

The choice is a pure function of the options, tested without Whisper.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lingua_protocol import FloatAudio

from ._backends.interfaces import Recognizer, Transcript


@dataclass(frozen=True)
class AsrOption:
    """A loaded recogniser and what it was published for."""

    recognizer: Recognizer
    published_for: frozenset[str]
    size_bytes: int
    version: str | None = None


def choose_recognizer(
    options: Sequence[AsrOption],
    language: str | None,
    task: str = "transcribe",
    pinned: str | None = None,
) -> AsrOption | None:
    """The option that serves `language` for `task` by the module's rule, or None."""
    auto = language in (None, "auto")
    candidates = [
        (order, o)
        for order, o in enumerate(options)
        if (o.recognizer.multilingual if auto else language in o.published_for)
        and (task == "transcribe" or o.recognizer.multilingual)
    ]
    if not candidates:
        return None

    def rank(item: tuple[int, AsrOption]) -> tuple[bool, int, int, int]:
        order, o = item
        breadth = -len(o.published_for) if auto else len(o.published_for)
        return (o.recognizer.model_id != pinned, breadth, -o.size_bytes, order)

    return min(candidates, key=rank)[1]


class ASRRouter:
    """A `Recognizer` over several: each call goes to the model `choose_recognizer` picks.

    Replaced whole (never mutated) when the store changes, so a running job keeps the model it
    started with, and a removed model is freed when its last job ends."""

    def __init__(self, options: Sequence[AsrOption], pinned: str | None = None) -> None:
        """With no options (every model failed its self-test or was withdrawn) the router
        serves no language, and the node advertises ASR as not ready."""
        self.options = list(options)
        self.pinned = pinned
        first = self.options[0].recognizer if self.options else None
        self.model_id = first.model_id if first else "none"  # the default, for v0.1 peers
        self.engine = first.engine if first else "none"
        self.languages = sorted({lang for o in self.options for lang in o.published_for})
        self.multilingual = any(o.recognizer.multilingual for o in self.options)

    def choose(self, language: str | None, task: str = "transcribe") -> Recognizer:
        option = choose_recognizer(self.options, language, task, self.pinned)
        if option is None:
            raise LookupError(f"no speech recogniser serves {language!r} for {task}")
        return option.recognizer

    def transcribe(
        self, audio: FloatAudio, language: str | None, *, task: str = "transcribe"
    ) -> Transcript:
        return self.choose(language, task).transcribe(audio, language, task=task)


def pick_recognizer(recognizer: Recognizer, language: str | None, task: str) -> Recognizer:
    """The model that serves `language` for `task` (raises LookupError when none does): the
    router's choice, or `recognizer` itself when it is a single model."""
    if isinstance(recognizer, ASRRouter):
        return recognizer.choose(language, task)
    return recognizer


def asr_models(recognizer: Recognizer) -> list[AsrOption]:
    """Every model behind `recognizer` (one, unless it is an `ASRRouter`), for the register
    and heartbeats."""
    if isinstance(recognizer, ASRRouter):
        return list(recognizer.options)
    return [AsrOption(recognizer, frozenset(recognizer.languages), 0)]
