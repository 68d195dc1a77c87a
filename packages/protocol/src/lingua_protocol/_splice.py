"""Parse a large JSON message without copying its base64 audio into a Python string.

A 3 s utterance is ~128 KB of JSON, almost all of it one base64 string. A full parse copies
that string into a `str`, and re-emitting it copies it back; a relay such as the scheduler
needs neither. `load_with_audio_literal` finds the audio's JSON string literal in the bytes,
checks it, and hands back the parsed message with a view of the literal for `AudioData` to
carry and `Message.to_json_bytes` to join into the next message as it is.

It takes this path only when the result is exactly what a full parse would give: the key is a
key of the outermost object, the literal holds nothing but strict base64 (or, for a caller that
does not verify audio, ASCII without escapes), and the message is valid JSON (orjson parses the
rest with an empty string in the literal's place; unverified, it parses it whole). Otherwise it
returns `None` and the caller parses the message the ordinary way, which also produces the
ordinary error for bad input.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from ._audio_payload import _ALPHABET, AudioData

MIN_SPLICE_BYTES = 4096
"""Below this a full parse is as cheap as looking for the literal."""

_WHITESPACE = b" \t\r\n"
_TAIL = 256  # a last member with no quote this far back is taken for the audio (then checked)
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


def load_with_audio_literal(
    data: bytes, fields: tuple[str, ...], *, verify: bool = True
) -> tuple[dict[str, Any], str] | None:
    """`(message dict with an AudioData under the field, field name)`, or `None` to fall back.

    `fields` are the audio field names to look for (e.g. `("audio", "tts_audio")`). With
    `verify`, the literal must be strict base64; without, it must only be safe to copy as it is
    (printable ASCII, no quote, no backslash), and strictness is left to whoever decodes it.
    """
    if len(data) < MIN_SPLICE_BYTES:
        return None
    for name in fields:
        found = _find_literal(data, name)
        if found is None:
            continue
        start, end = found  # data[start:end] is the literal, quotes included
        raw = (_load_verified if verify else _load_plain)(data, name, start, end)
        if raw is None:
            return None  # not safe to take verbatim; the full parse rules, errors included
        raw[name] = AudioData(literal=memoryview(data)[start:end])
        return raw, name
    return None


def _load_verified(data: bytes, name: str, start: int, end: int) -> dict[str, Any] | None:
    """The message with "" for its audio, when the literal is strict base64 (one pass over
    the message) and the rest, parsed with an empty literal in its place, keeps "" for the key
    (no duplicate key, no key spelled with escapes)."""
    if not _literal_is_base64(data, start, end):
        return None
    try:
        raw = orjson.loads(b"".join((data[: start + 1], data[end - 1 :])))
    except orjson.JSONDecodeError:
        return None
    return raw if isinstance(raw, dict) and raw.get(name) == "" else None


def _load_plain(data: bytes, name: str, start: int, end: int) -> dict[str, Any] | None:
    """The whole message parsed, when the literal is a JSON string token that means itself.

    One orjson read of the message proves it is JSON: UTF-8, and no raw control character in
    any string. The literal then means itself if it holds no escape (no backslash) and only
    ASCII (its text is as long as the token), and it is the value the parse kept if no later
    duplicate of the key follows it. One read instead of a check of the literal and a parse of
    the rest: 0.04 ms less per 3 s utterance on a core whose caches went cold between
    utterances (numpy reductions, 0.005 ms hot, were 0.05 ms there)."""
    if data.find(b"\\", start + 1, end - 1) != -1:
        return None
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(raw, dict):
        return None
    text = raw.get(name)
    if not isinstance(text, str) or len(text) != end - start - 2:
        return None
    if data.find(b'"' + name.encode("ascii") + b'"', end) != -1:
        return None  # the key again later (or in a later string): the full parse decides
    return raw


def _find_literal(data: bytes, name: str) -> tuple[int, int] | None:
    """Where the outermost object's `"name": "..."` literal sits: (start, end), or None.

    The end is the next quote; when the audio is the last member (as Lingua writes it) that
    is the last quote of the message, found from the end without reading the audio.
    """
    key = b'"' + name.encode("ascii") + b'"'
    at = data.find(key)
    while at > 0:
        opening = _opening_quote_after_key(data, at + len(key))
        # not an escaped quote inside some string, a nested key, or a value that happens to
        # read "audio": look on
        if opening is not None and data[at - 1] != 0x5C and _top_level(data[:at]):
            break
        at = data.find(key, at + 1)
    else:
        return None
    assert opening is not None
    close = data.rfind(b'"')
    last = (
        close > opening
        and data[close + 1 :].strip(_WHITESPACE) == b"}"
        and data.rfind(b'"', max(opening + 1, close - _TAIL), close) == -1  # a long string
    )
    if not last:
        close = data.find(b'"', opening + 1)  # not the last member: read on to its end
    if close == -1:
        return None
    return opening, close + 1


def _opening_quote_after_key(data: bytes, i: int) -> int | None:
    """Index of the `"` that opens a string value after `: ` at `i`, if that is what follows."""
    n = len(data)
    while i < n and data[i] in _WHITESPACE:
        i += 1
    if i >= n or data[i] != 0x3A:  # ':'
        return None
    i += 1
    while i < n and data[i] in _WHITESPACE:
        i += 1
    return i if i < n and data[i] == 0x22 else None


def _literal_is_base64(data: bytes, start: int, end: int) -> bool:
    """Strict base64 between the quotes at `start` and `end - 1`, checked with one pass over
    the message instead of slicing the literal out: of what is left once the alphabet is
    removed, the part between the literal's quotes may only be its closing `=` or `==`."""
    if (end - start - 2) % 4:
        return False
    rest = data.translate(None, _ALPHABET)
    head = len(data[:start].translate(None, _ALPHABET)) + 1
    tail = len(data[end:].translate(None, _ALPHABET)) + 1
    padding = rest[head : len(rest) - tail]
    return not padding or (padding in (b"=", b"==") and data.endswith(padding + b'"', start, end))


def _top_level(prefix: bytes) -> bool:
    """True when a key following `prefix` belongs to the outermost object (for valid JSON):
    outside strings, one more bracket opens than closes."""
    opened = prefix.count(b"{") + prefix.count(b"[")
    if opened == 1:
        return True  # only the outermost brace: no need to look at the strings
    skeleton = _STRING.sub(b"", prefix)
    opened = skeleton.count(b"{") + skeleton.count(b"[")
    return opened - skeleton.count(b"}") - skeleton.count(b"]") == 1
