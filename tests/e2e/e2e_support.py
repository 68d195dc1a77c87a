"""Helpers shared by the end-to-end tests (imported by name, so not in conftest)."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lingua_client.files import run_files
from lingua_client.local_cluster import LocalCluster

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


@contextlib.contextmanager
def one_node_cluster(
    work: Path, models_dir: Path | None = None, max_jobs: int = 1
) -> Iterator[LocalCluster]:
    """A scheduler and one ready node named "node", stopped on exit: the set-up of the client
    benchmarks and the screenshot scripts. `models_dir` defaults to the node's own models
    folder; its embedded models are built first, so a first run does not spend the node's
    ready timeout building them."""
    from lingua_node.embedded import ensure_embedded
    from lingua_node.settings import NodeSettings

    models = models_dir or NodeSettings().models_path
    ensure_embedded(models)
    with LocalCluster(work, models_dir=models) as cluster:
        cluster.start_scheduler()
        cluster.wait_node_ready(cluster.start_node("node", max_jobs=max_jobs))
        yield cluster
