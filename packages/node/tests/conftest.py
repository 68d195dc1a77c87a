from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SPEECH = ROOT / "tests" / "data" / "speech"


@pytest.fixture(scope="session")
def speech_items() -> list[dict[str, str]]:
    items: list[dict[str, str]] = json.loads((SPEECH / "sentences.json").read_text())
    return [dict(item, path=str(SPEECH / item["file"])) for item in items]


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("node-models")


@pytest.fixture(scope="session")
def backends(models_dir: Path):  # type: ignore[no-untyped-def]
    from lingua_node._loader import load_backends
    from lingua_node._settings import NodeSettings

    return load_backends(NodeSettings(home=models_dir.parent / "home", models_dir=models_dir))
