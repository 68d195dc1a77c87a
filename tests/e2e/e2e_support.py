"""Helpers shared by the end-to-end tests (imported by name, so not in conftest)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from lingua_client.files import run_files

ROOT = Path(__file__).resolve().parents[2]
SPEECH = ROOT / "tests" / "data" / "speech"


def models_with_whisper(shared: Path, folder: Path) -> Path:
    """A node's own models folder that reuses the shared Whisper build (a symlink, no copy)."""
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "whisper-base"
    if not link.exists():
        link.symlink_to(shared / "whisper-base", target_is_directory=True)
    return folder


async def send_files(
    url: str, files: list[Path], src: str, tgt: str, **kw: Any
) -> tuple[int, list[dict[str, Any]]]:
    out = io.StringIO()
    code = await run_files(url, files, src=src, tgt=tgt, as_json=True, out=out, **kw)
    return code, [json.loads(line) for line in out.getvalue().splitlines()]
