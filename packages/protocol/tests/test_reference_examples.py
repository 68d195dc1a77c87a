"""Every complete JSON example in the reference documents (docs/reference/, vendored copies)
parses into its model and re-emits equal JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from lingua_protocol import (
    ProtocolError,
    parse_client_message,
    parse_node_message,
    parse_scheduler_message,
    parse_server_message,
)

REFERENCE = Path(__file__).resolve().parents[3] / "docs" / "reference"
PARSERS = (parse_client_message, parse_server_message, parse_node_message, parse_scheduler_message)
BLOCK_RE = re.compile(r"```jsonc?\s*\n(.*?)```", re.S)
PLACEHOLDER_AUDIO = {
    "base64-encoded-audio-data",
    "base64-encoded-tts-audio",
    "<base64 encoded data>",
}


def _strip_comments(text: str) -> str:
    out_lines = []
    for line in text.splitlines():
        in_string = False
        escaped = False
        cut = len(line)
        for i, ch in enumerate(line):
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = not in_string
            elif not in_string and line.startswith("//", i):
                cut = i
                break
        out_lines.append(line[:cut])
    return "\n".join(out_lines)


def _blocks() -> list[tuple[str, dict]]:
    found = []
    for path in sorted(REFERENCE.glob("*.md")):
        for n, match in enumerate(BLOCK_RE.finditer(path.read_text(encoding="utf-8"))):
            try:
                value = json.loads(_strip_comments(match.group(1)))
            except json.JSONDecodeError:
                continue
            found.append((f"{path.stem}#{n}", value))
    return found


ALL_BLOCKS = _blocks()
# protocol-v0.1.md section 1.1 illustrates the envelope with {"type": "string", "...": "..."}:
# complete JSON, but no message. Every other complete block is a message.
BLOCKS = [(name, block) for name, block in ALL_BLOCKS if block.get("type") != "string"]


def test_the_reference_examples_are_all_found() -> None:
    # The brief counts 27; a careful count finds 32 complete blocks (31 messages and the
    # envelope illustration). We test all of them; see docs/protocol.md.
    assert len(ALL_BLOCKS) >= 27
    assert len(ALL_BLOCKS) - len(BLOCKS) == 1


def _parse_any(text: str, verify_audio: bool):
    parsed = []
    for parse in PARSERS:
        try:
            parsed.append(parse(text, verify_audio=verify_audio))
        except ProtocolError:
            continue
    return parsed


@pytest.mark.parametrize(("name", "block"), BLOCKS, ids=[b[0] for b in BLOCKS])
def test_reference_example_parses_into_its_model_and_round_trips(name: str, block: dict) -> None:
    text = json.dumps(block, ensure_ascii=False)
    # The reference writes placeholders such as "base64-encoded-audio-data" where audio goes:
    # accept them only with audio verification off, and check the default rejects them.
    has_placeholder = any(v in PLACEHOLDER_AUDIO for v in block.values() if isinstance(v, str))
    parsed = _parse_any(text, verify_audio=not has_placeholder)
    assert parsed, f"{name} parsed in no direction"
    for message in parsed:
        assert message.type == block["type"]
        assert type(message).model_fields["type"].default == block["type"]
        assert json.loads(message.to_json()) == block
    if has_placeholder:
        assert _parse_any(text, verify_audio=True) == []
