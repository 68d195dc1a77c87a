"""Parse functions: bytes or text from a WebSocket in, a message model or `ProtocolError` out.

Nothing but `ProtocolError` escapes these functions, whatever the input; a property test
holds them to that.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from ._base import Message
from ._errors import ErrorCode, ProtocolError
from ._frames import attach_audio, split_frame
from ._splice import MIN_SPLICE_BYTES, load_with_audio_literal
from ._unions import CLIENT_TYPES, NODE_TYPES, SCHEDULER_TYPES, SERVER_TYPES

_VERIFY: dict[str, bool] = {"verify_audio": True}
_NO_VERIFY: dict[str, bool] = {"verify_audio": False}


def _audio_fields(table: dict[str, type[Message]]) -> tuple[str, ...]:
    return tuple(sorted({m.AUDIO_FIELD for m in table.values() if m.AUDIO_FIELD}))


_AUDIO_FIELDS = {
    "client": _audio_fields(CLIENT_TYPES),
    "scheduler-to-client": _audio_fields(SERVER_TYPES),
    "node": _audio_fields(NODE_TYPES),
    "scheduler-to-node": _audio_fields(SCHEDULER_TYPES),
}


def parse_client_message(data: str | bytes, *, verify_audio: bool = True) -> Message:
    """Parse what a client sends the scheduler on `/ws/session`."""
    return _parse(data, CLIENT_TYPES, "client", verify_audio)


def parse_server_message(data: str | bytes, *, verify_audio: bool = True) -> Message:
    """Parse what the scheduler sends a client on `/ws/session`."""
    return _parse(data, SERVER_TYPES, "scheduler-to-client", verify_audio)


def parse_node_message(data: str | bytes, *, verify_audio: bool = True) -> Message:
    """Parse what a node sends the scheduler on `/ws/node`."""
    return _parse(data, NODE_TYPES, "node", verify_audio)


def parse_scheduler_message(data: str | bytes, *, verify_audio: bool = True) -> Message:
    """Parse what the scheduler sends a node on `/ws/node`."""
    return _parse(data, SCHEDULER_TYPES, "scheduler-to-node", verify_audio)


def is_binary_frame(data: str | bytes | bytearray | memoryview) -> bool:
    """True for a binary audio frame: its header length (< 16 MiB) starts with a zero byte,
    which no JSON text can."""
    return not isinstance(data, str) and len(data) > 0 and data[0] == 0


def _parse(
    data: str | bytes, table: dict[str, type[Message]], direction: str, verify_audio: bool
) -> Message:
    raw: dict[str, Any]
    if not isinstance(data, str) and is_binary_frame(data):
        header, audio = split_frame(data)
        raw = header
        model = _lookup(raw, table, direction)
        if model.AUDIO_FIELD is None:
            raise ProtocolError(
                ErrorCode.INVALID_MESSAGE, f"{model.__name__} cannot be sent as a binary frame"
            )
        attach_audio(raw, model.AUDIO_FIELD, audio)
    else:
        spliced = _load_spliced(data, table, _AUDIO_FIELDS[direction], verify_audio)
        if spliced is not None:
            raw, model = spliced
        else:
            raw = _load_json(data)
            model = _lookup(raw, table, direction)
    try:
        return model.model_validate(raw, context=_VERIFY if verify_audio else _NO_VERIFY)
    except ValidationError as exc:
        raise _from_validation_error(exc) from None
    except RecursionError:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "message nested too deeply") from None


def _load_spliced(
    data: str | bytes, table: dict[str, type[Message]], fields: tuple[str, ...], verify: bool
) -> tuple[dict[str, Any], type[Message]] | None:
    """The large-message fast path (see `lingua_protocol._splice`), or None to parse fully."""
    if len(data) < MIN_SPLICE_BYTES:
        return None
    if isinstance(data, str):
        try:
            data = data.encode("utf-8")
        except UnicodeEncodeError:
            return None
    elif not isinstance(data, bytes):
        data = bytes(data)
    found = load_with_audio_literal(data, fields, verify=verify)
    if found is None:
        return None
    raw, name = found
    kind = raw.get("type")
    model = table.get(kind) if isinstance(kind, str) else None
    if model is None or name != model.AUDIO_FIELD:
        return None  # not this message's audio field: the full parse decides
    return raw, model


def _load_json(data: str | bytes | bytearray | memoryview) -> dict[str, Any]:
    try:
        value = orjson.loads(data)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"invalid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "a message must be a JSON object")
    return value


def _lookup(raw: dict[str, Any], table: dict[str, type[Message]], direction: str) -> type[Message]:
    kind = raw.get("type")
    if kind is None:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "missing field: type", "type")
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "field 'type' must be a string", "type")
    model = table.get(kind)
    if model is None:
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE, f"unknown {direction} message type {kind!r}", "type"
        )
    return model


def _from_validation_error(exc: ValidationError) -> ProtocolError:
    first = exc.errors(include_url=False, include_input=False)[0]
    field = ".".join(str(part) for part in first.get("loc", ())) or None
    kind = first.get("type", "")
    if kind == "missing":
        message = f"missing field: {field}"
    else:
        message = f"invalid field {field}: {first.get('msg', 'invalid value')}"
    return ProtocolError(ErrorCode.INVALID_MESSAGE, message, field)
