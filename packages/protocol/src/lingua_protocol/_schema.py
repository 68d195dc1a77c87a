"""Write the JSON Schema of every message (`hatch run protocol-schema`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import models_json_schema

from ._unions import (
    CLIENT_TYPES,
    NODE_TYPES,
    SCHEDULER_TYPES,
    SERVER_TYPES,
    ClientMessage,
    NodeMessage,
    SchedulerMessage,
    ServerMessage,
)


def build_schema() -> dict[str, Any]:
    """One document: `$defs` for every message, and a `oneOf` per direction."""
    models = {
        *CLIENT_TYPES.values(),
        *SERVER_TYPES.values(),
        *NODE_TYPES.values(),
        *SCHEDULER_TYPES.values(),
    }
    ordered = sorted(models, key=lambda m: m.__name__)
    _, top = models_json_schema(
        [(m, "validation") for m in ordered], ref_template="#/$defs/{model}"
    )
    directions: dict[str, Any] = {}
    for name, union in (
        ("client_to_scheduler", ClientMessage),
        ("scheduler_to_client", ServerMessage),
        ("node_to_scheduler", NodeMessage),
        ("scheduler_to_node", SchedulerMessage),
    ):
        adapter: TypeAdapter[Any] = TypeAdapter(union)  # type: ignore[arg-type]
        schema = adapter.json_schema(ref_template="#/$defs/{model}")
        schema.pop("$defs", None)
        directions[name] = schema
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Lingua protocol",
        "description": "Every WebSocket message of Lingua, generated from lingua_protocol.",
        "$defs": top.get("$defs", {}),
        "properties": directions,
    }


def render_schema() -> str:
    return json.dumps(build_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    from ._docs_render import render_protocol_md

    target = Path(args[0] if args else "docs/protocol.schema.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_schema(), encoding="utf-8")
    markdown = target.with_name("protocol.md")
    markdown.write_text(render_protocol_md(), encoding="utf-8")
    print(f"wrote {target} and {markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
