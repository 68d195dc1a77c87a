"""Property tests: arbitrary input raises only ProtocolError; valid messages round-trip."""

from __future__ import annotations

import base64
import contextlib
import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lingua_protocol import (
    ProtocolError,
    parse_client_message,
    parse_node_message,
    parse_scheduler_message,
    parse_server_message,
)
from lingua_protocol._unions import CLIENT_TYPES, NODE_TYPES, SCHEDULER_TYPES, SERVER_TYPES

EXAMPLES = int(os.environ.get("LINGUA_PROPERTY_EXAMPLES", "20"))
"""Examples per message model: 20 in the fast suite; CI sets LINGUA_PROPERTY_EXAMPLES=60."""

PARSERS = [parse_client_message, parse_server_message, parse_node_message, parse_scheduler_message]
TABLES = [CLIENT_TYPES, SERVER_TYPES, NODE_TYPES, SCHEDULER_TYPES]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
ALL_TYPES = sorted({t for table in TABLES for t in table})


@st.composite
def message_like(draw: st.DrawFn) -> dict[str, Any]:
    body = draw(st.dictionaries(st.text(max_size=20), json_values, max_size=8))
    if draw(st.booleans()):
        body["type"] = draw(st.sampled_from(ALL_TYPES))
    return body


@pytest.mark.parametrize("parse", PARSERS)
@given(data=st.binary(max_size=512))
def test_arbitrary_bytes_raise_only_protocol_error(parse: Any, data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        parse(data)


@pytest.mark.parametrize("parse", PARSERS)
@given(value=json_values | message_like())
def test_arbitrary_json_raises_only_protocol_error(parse: Any, value: Any) -> None:
    with contextlib.suppress(ProtocolError):
        parse(json.dumps(value))


@pytest.mark.parametrize("parse", PARSERS)
@given(data=st.binary(max_size=64), body=message_like())
def test_arbitrary_binary_frames_raise_only_protocol_error(
    parse: Any, data: bytes, body: dict[str, Any]
) -> None:
    header = json.dumps(body).encode()
    with contextlib.suppress(ProtocolError):
        parse(len(header).to_bytes(4, "big") + header + data)


def _model_cases() -> list[tuple[Any, Any]]:
    cases = []
    for parse, table in zip(PARSERS, TABLES, strict=True):
        for model in table.values():
            cases.append((parse, model))
    return cases


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


def from_schema(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid for the subset of JSON Schema that pydantic emits for our messages."""
    if "$ref" in schema:
        return st.deferred(lambda: from_schema(defs[schema["$ref"].split("/")[-1]], defs))
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema:
        return st.one_of([from_schema(s, defs) for s in schema["anyOf"]])
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", ()))
        optional = sorted(set(props) - required)
        fields = {k: from_schema(props[k], defs) for k in props}

        @st.composite
        def objects(draw: st.DrawFn) -> dict[str, Any]:
            chosen = [k for k in optional if draw(st.booleans())]
            out = {k: draw(fields[k]) for k in (*sorted(required), *chosen)}
            if schema.get("additionalProperties") is not False and not props:
                out.update(draw(st.dictionaries(_text, st.integers() | _text, max_size=3)))
            return out

        return objects()
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {}), defs), max_size=3)
    if kind == "string":
        if schema.get("contentEncoding") == "base64":
            # Canonical base64, as any encoder writes it (non-canonical padding bits would
            # decode to the same bytes but not re-encode to the same text).
            return st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode())
        longest = schema.get("maxLength")
        if "pattern" in schema:
            found = st.from_regex(schema["pattern"], fullmatch=True)
            return found if longest is None else found.filter(lambda v: len(v) <= longest)
        shortest = schema.get("minLength", 0)
        if shortest:
            return st.text(
                st.characters(blacklist_categories=("Cs",)), min_size=shortest, max_size=longest
            )
        return _text
    if kind == "integer":
        lo = schema.get("minimum", schema.get("exclusiveMinimum", -(2**40) - 1) + 1)
        hi = schema.get("maximum", 2**40)
        return st.integers(min_value=lo, max_value=hi)
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return st.integers() | _text


@pytest.mark.parametrize(
    ("parse", "model"), _model_cases(), ids=lambda v: getattr(v, "__name__", "")
)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_valid_messages_survive_emit_then_parse(
    parse: Any, model: Any, data: st.DataObject
) -> None:
    schema = model.model_json_schema()
    value = data.draw(from_schema(schema, schema.get("$defs", {})))
    message = parse(json.dumps(value))
    assert json.loads(message.to_json()) == value
    assert parse(message.to_json()) == message
    again = parse(message.to_frame())
    assert again == message
    assert json.loads(again.to_json()) == value
