"""Is a text written in the script its language uses? For speech translation into English.

Whisper's `translate` task sometimes leaves part of a sentence in the source language's
script ("I want to meet Ding明天的酒店..."). Such a line is not an English translation, and
passing it on as a success would put a half-translated sentence in front of a listener. The
check is on letters alone: digits, punctuation, symbols and spaces are shared by all scripts.
"""

from __future__ import annotations

import unicodedata


def foreign_letters(text: str, script: str = "LATIN") -> str:
    """The letters of `text` that are not of `script` (Unicode names start with it), in
    order, each once; empty when every letter is of that script."""
    seen: dict[str, None] = {}
    for ch in text:
        if ch in seen or ch.isascii():
            continue
        if ch == "\ufffd" or (
            unicodedata.category(ch).startswith("L")
            and not unicodedata.name(ch, "").startswith(script)
        ):
            seen[ch] = None
    return "".join(seen)
