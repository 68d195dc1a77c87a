"""The base model every message derives from, and the field types they share."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal, Self

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.fields import FieldInfo

from ._audio_payload import AudioData

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


MAX_LANG_CODE_CHARS = 35
"""Longest language code accepted (BCP 47 recommends supporting at least 35 characters)."""
MAX_ID_CHARS = 128
"""Ids, names, versions, model kinds and other short peer-supplied strings."""
MAX_TEXT_CHARS = 1024
"""Free text a peer explains itself with: reasons, error messages."""
MAX_RESULT_TEXT_CHARS = 16_384
"""A node's transcript or translation of one utterance (minutes of speech fit several times)."""
MAX_CREDENTIAL_CHARS = 128
MIN_CREDENTIAL_CHARS = 32
"""A node credential: at least 32 characters (a 32-byte `secrets.token_urlsafe` has 43)."""

LangCode = Annotated[
    str,
    Field(max_length=MAX_LANG_CODE_CHARS),
    AfterValidator(_check_lang),
    WithJsonSchema({"type": "string", "pattern": LANG_PATTERN, "maxLength": MAX_LANG_CODE_CHARS}),
]
"""A BCP-47-style language code: 'en', 'zh', 'yue', 'pt-BR'."""

SourceLang = Annotated[
    str,
    Field(max_length=MAX_LANG_CODE_CHARS),
    AfterValidator(_check_src_lang),
    WithJsonSchema(
        {"type": "string", "pattern": SOURCE_LANG_PATTERN, "maxLength": MAX_LANG_CODE_CHARS}
    ),
]
"""A language code, or 'auto' to let ASR detect the spoken language."""

# Every string and list a peer sends is capped where it is declared, so a claim costs the
# receiver at most what these caps allow, whatever the message size limit (the length check
# runs before any pattern).
IdText = Annotated[str, Field(max_length=MAX_ID_CHARS)]
"""An id, name, version or kind: at most `MAX_ID_CHARS` characters."""
Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]
"""A reason or message: at most `MAX_TEXT_CHARS` characters."""
ResultText = Annotated[str, Field(max_length=MAX_RESULT_TEXT_CHARS)]
"""A transcript or translation: at most `MAX_RESULT_TEXT_CHARS` characters."""
MAX_MODELS = 256
"""Installed models one node may report."""
MAX_SERVICES = 64
"""Installed services one node may report."""
MAX_STAGE_TYPES = 16
"""Entries in `capability_by_type`."""
MAX_LANGUAGES = 512
"""Languages in any one language list (ASR, TTS, speech translation targets, a model's)."""
MAX_LANGUAGE_PAIRS = 4096
"""Pairs in `supported_language_pairs` and in `nmt_pairs`, each."""
MAX_GPUS = 16

Credential = Annotated[str, Field(min_length=MIN_CREDENTIAL_CHARS, max_length=MAX_CREDENTIAL_CHARS)]
"""A node's secret credential (see `node_register.node_credential`)."""

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
    """Shared configuration: strict types; a field this version does not declare (a newer
    peer's) is accepted and dropped at parse, so no undeclared field is kept or travels on:
    the models here are the whole contract."""

    model_config = ConfigDict(extra="ignore", strict=True, populate_by_name=True)

    @classmethod
    def trusted(cls, **fields: Any) -> Self:
        """This model made from values the caller already holds as its field types, without
        validating them again: values copied from a message that was validated on arrival
        (a node's result relayed to a client), or made by the caller itself (ids, counters).

        It is pydantic's `model_construct` without that function's generic work, for the
        messages a scheduler builds for every utterance: validation and pydantic's own
        serializer touch enough code and schema to cost ~50 us each per message on a core
        whose caches went cold between utterances. Never use it on a peer's data that was
        not validated as this model. A name the model does not declare raises `TypeError`,
        so a typo cannot put an undeclared field on the wire."""
        defaults, factories, names, _ = _plan(cls)
        if not fields.keys() <= names:
            raise TypeError(f"{cls.__name__} has no field {sorted(fields.keys() - names)}")
        values = dict(defaults)
        for name, info in factories:
            values[name] = info.get_default(call_default_factory=True, validated_data={})
        values.update(fields)
        model = cls.__new__(cls)
        _set = object.__setattr__
        _set(model, "__dict__", values)
        _set(model, "__pydantic_fields_set__", set(fields))
        _set(model, "__pydantic_extra__", None)
        _set(model, "__pydantic_private__", None)
        return model


_Plan = tuple[dict[str, Any], tuple[tuple[str, FieldInfo], ...], frozenset[str], tuple[str, ...]]
_PLANS: dict[type[Model], _Plan] = {}


def _plan(cls: type[Model]) -> _Plan:
    """A model class's plain defaults, fields with a default factory, and field names (as a
    set, and in declaration order), worked out once per class."""
    plan = _PLANS.get(cls)
    if plan is None:
        fields = cls.model_fields
        defaults = {
            n: f.default
            for n, f in fields.items()
            if not f.is_required() and f.default_factory is None
        }
        factories = tuple((n, f) for n, f in fields.items() if f.default_factory is not None)
        plan = _PLANS[cls] = (defaults, factories, frozenset(fields), tuple(fields))
    return plan


def _set_fields(model: Model, exclude: str | None) -> dict[str, Any]:
    """The fields set on `model` (but `exclude`), in declaration order: the order pydantic
    writes them in, so both paths give the same bytes."""
    values = model.__dict__
    given = model.model_fields_set
    return {n: values[n] for n in _plan(type(model))[3] if n in given and n != exclude}


def _json_value(value: Any) -> Any:
    """orjson's `default`: what `model_dump(mode="json", exclude_unset=True)` writes for a
    value orjson has no form of its own for (a nested model: the fields set on it; audio:
    base64). Anything else raises, and the message is written by pydantic's serializer."""
    if isinstance(value, Model):
        return _set_fields(value, None)
    if isinstance(value, AudioData):
        return value.to_base64()
    raise TypeError(type(value).__name__)


def _type_is_required(schema: dict[str, Any]) -> None:
    required = schema.setdefault("required", [])
    if isinstance(required, list) and "type" not in required:
        required.insert(0, "type")


class Message(Model):
    """A protocol message. `AUDIO_FIELD` names the field that a binary frame carries raw."""

    model_config = ConfigDict(json_schema_extra=_type_is_required)

    type: str
    AUDIO_FIELD: ClassVar[str | None] = None
    PLANNED: ClassVar[str | None] = None
    """Set on a message that is declared but not in use yet: what is missing, and what a
    Lingua component does if it receives one meanwhile. `docs/protocol.md` marks it planned."""

    def to_dict(self, *, exclude: str | None = None) -> dict[str, Any]:
        """The message as JSON-ready data: fields that were never set (and `exclude`) left
        out."""
        data = self.model_dump(
            mode="json", exclude_unset=True, exclude={exclude} if exclude else None
        )
        data["type"] = self.type
        return data

    def _json_head(self, exclude: str | None = None) -> bytes:
        """`orjson.dumps(self.to_dict(exclude=...))`, the same JSON written without pydantic's
        serializer: orjson writes the fields that were set, nested models through
        `_json_value`. Parity with `to_dict` for every message is tested; a value only pydantic
        knows how to write (a set) takes `to_dict` as before."""
        data = _set_fields(self, exclude)
        data["type"] = self.type
        try:
            return orjson.dumps(data, default=_json_value)
        except TypeError:  # orjson.JSONEncodeError is one
            return orjson.dumps(self.to_dict(exclude=exclude))

    def to_json_bytes(self) -> bytes:
        """The message as JSON bytes. Audio goes last, as the literal it arrived as when it
        came in JSON: joined in without a copy to `str`, and found by a receiver from the end
        of the message without reading through it (see `lingua_protocol._splice`)."""
        parts = self.to_json_parts()
        if len(parts) == 1 and isinstance(parts[0], bytes):
            return parts[0]
        return b"".join(parts)

    def to_json_parts(self) -> tuple[bytes | memoryview, ...]:
        """`to_json_bytes` as the pieces it joins: one `bytes` for a message without audio;
        the fields, the audio key, the audio literal (a view of the bytes it arrived in, not
        a copy) and the closing brace otherwise. A writer that can send several buffers at
        once (`writelines`) sends a 128 KB utterance without copying it in user space."""
        audio = self.audio_data()
        if audio is None or self.AUDIO_FIELD is None:
            return (self._json_head(),)
        head = self._json_head(self.AUDIO_FIELD)  # never "{}": has a type
        key = b',"' + self.AUDIO_FIELD.encode() + b'":'
        return (memoryview(head)[:-1], key, audio.json_literal(), b"}")

    def to_json(self) -> str:
        """The message as a JSON text frame (audio, if any, as base64)."""
        return self.to_json_bytes().decode("utf-8")

    def to_frame(self) -> bytes:
        """The message as a binary frame when it carries audio, else as JSON bytes.

        See `lingua_protocol._frames` for the layout.
        """
        from ._frames import encode_frame

        return encode_frame(self)

    def audio_data(self) -> AudioData | None:
        """The audio this message carries, if any, in whatever form it arrived."""
        if self.AUDIO_FIELD is None:
            return None
        value = getattr(self, self.AUDIO_FIELD, None)
        return value if isinstance(value, AudioData) else None
