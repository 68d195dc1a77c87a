"""Helpers shared by the end-to-end tests (imported by name, so not in conftest)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lingua_client import LocalCluster, run_files
from lingua_model_hub import Catalog

ROOT = Path(__file__).resolve().parents[2]
SPEECH = ROOT / "tests" / "data" / "speech"


def models_with_whisper(shared: Path, folder: Path) -> Path:
    """A node's own models folder that reuses the shared Whisper build (a symlink, no copy)."""
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "whisper-base"
    if not link.exists():
        link.symlink_to(shared / "whisper-base", target_is_directory=True)
    return folder


TINY_NMT = {
    "model_id": "tiny-m2m100",
    "version": "1",
    "kind": "nmt",
    "engine": "transformers",
    "src_lang": "en",
    "tgt_lang": "zh",
}
"""How the tests publish the tiny random en->zh M2M100 (see conftest `tiny_nmt`)."""


def publish_tiny_nmt(cluster: LocalCluster, tiny_nmt: Path) -> None:
    """Put the tiny en->zh model into the cluster's hub store (before or while it runs)."""
    Catalog(cluster.work / "hub-store").publish_dir(tiny_nmt, dict(TINY_NMT))


async def install_from_hub(cluster: LocalCluster, ref: str, models_dir: Path) -> None:
    """`lingua_node models install REF` from the cluster's hub into `models_dir`, as an
    operator would run it (a real process)."""
    command = [sys.executable, "-m", "lingua_node", "models", "install", ref]
    command += ["--hub", cluster.hub_url, "--models-dir", str(models_dir)]
    done = await asyncio.to_thread(
        subprocess.run,
        command,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


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
    from lingua_node import NodeSettings, ensure_embedded

    models = models_dir or NodeSettings().models_path
    ensure_embedded(models)
    with LocalCluster(work, models_dir=models) as cluster:
        cluster.start_scheduler()
        cluster.wait_node_ready(cluster.start_node("node", max_jobs=max_jobs))
        yield cluster
