"""The base model every message derives from, and the field types they share."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from .audio_payload import AudioData

PROTOCOL_VERSION = "0.2"
"""The protocol version Lingua speaks. Peers that send none are taken to speak v0.1."""

SUPPORTED_PROTOCOL_MAJORS = ("0",)

LANG_PATTERN = r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$"
SOURCE_LANG_PATTERN = r"^(?:auto|[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*)$"
_LANG_RE = re.compile(LANG_PATTERN)


def _check_lang(value: str) -> str:
    if not _LANG_RE.match(value):
        raise ValueError(f"malformed language code {value!r} (expected e.g. 'en', 'zh', 'pt-BR')")
    return value


def _check_src_lang(value: str) -> str:
    return value if value == "auto" else _check_lang(value)


LangCode = Annotated[
    str, AfterValidator(_check_lang), WithJsonSchema({"type": "string", "pattern": LANG_PATTERN})
]
"""A BCP-47-style language code: 'en', 'zh', 'yue', 'pt-BR'."""

SourceLang = Annotated[
    str,
    AfterValidator(_check_src_lang),
    WithJsonSchema({"type": "string", "pattern": SOURCE_LANG_PATTERN}),
]
"""A language code, or 'auto' to let ASR detect the spoken language."""

AudioFormat = Literal["pcm16", "wav", "opus", "ogg"]
NonNegInt = Annotated[int, Field(ge=0)]
PositiveInt = Annotated[int, Field(gt=0)]
SampleRate = Annotated[int, Field(gt=0, le=384_000)]

MAX_UTTERANCE_INDEX = 2**53 - 1
"""The largest `utterance_index`: the largest integer every JSON peer (a browser's numbers are
doubles) represents exactly. A larger one is INVALID_MESSAGE at parse time."""

UtteranceIndex = Annotated[int, Field(ge=0, le=MAX_UTTERANCE_INDEX)]
"""A session's utterance number: 0 .. 2^53-1. Every `utterance_index` field uses this type."""


class Model(BaseModel):
    """Shared configuration: strict types, unknown fields from newer peers kept."""

    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)


def _type_is_required(schema: dict[str, Any]) -> None:
    required = schema.setdefault("required", [])
    if isinstance(required, list) and "type" not in required:
        required.insert(0, "type")


class Message(Model):
    """A protocol message. `AUDIO_FIELD` names the field that a binary frame carries raw."""

    model_config = ConfigDict(json_schema_extra=_type_is_required)

    type: str
    AUDIO_FIELD: ClassVar[str | None] = None

    def to_dict(self, *, exclude: str | None = None) -> dict[str, Any]:
        """The message as JSON-ready data: fields that were never set (and `exclude`) left
        out."""
        data = self.model_dump(
            mode="json", exclude_unset=True, exclude={exclude} if exclude else None
        )
        data["type"] = self.type
        return data

    def to_json_bytes(self) -> bytes:
        """The message as JSON bytes. Audio goes last, as the literal it arrived as when it
        came in JSON: joined in without a copy to `str`, and found by a receiver from the end
        of the message without reading through it (see `lingua_protocol.splice`)."""
        audio = self.audio_data()
        if audio is None or self.AUDIO_FIELD is None:
            return orjson.dumps(self.to_dict())
        head = orjson.dumps(self.to_dict(exclude=self.AUDIO_FIELD))  # never "{}": has a type
        key = b',"' + self.AUDIO_FIELD.encode() + b'":'
        return b"".join((memoryview(head)[:-1], key, audio.json_literal(), b"}"))

    def to_json(self) -> str:
        """The message as a JSON text frame (audio, if any, as base64)."""
        return self.to_json_bytes().decode("utf-8")

    def to_frame(self) -> bytes:
        """The message as a binary frame when it carries audio, else as JSON bytes.

        See `lingua_protocol.frames` for the layout.
        """
        from .frames import encode_frame

        return encode_frame(self)

    def audio_data(self) -> AudioData | None:
        """The audio this message carries, if any, in whatever form it arrived."""
        if self.AUDIO_FIELD is None:
            return None
        value = getattr(self, self.AUDIO_FIELD, None)
        return value if isinstance(value, AudioData) else None
