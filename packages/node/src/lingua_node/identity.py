"""A node keeps one `node_id` for life, stored in its home folder, so a restart is the same
node to the scheduler (and to sessions paired with it)."""

from __future__ import annotations

import uuid
from pathlib import Path


def node_id(home: Path) -> str:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "node_id"
    if path.is_file():
        value = path.read_text().strip()
        if value:
            return value
    value = f"node-{uuid.uuid4().hex[:12]}"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(value + "\n")
    tmp.replace(path)
    return value
