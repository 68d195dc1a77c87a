from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lingua_model_hub import HubProcess

TOKEN = "test-admin-token"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    with HubProcess(tmp_path_factory.mktemp("hub-store"), token=TOKEN) as running:
        yield running


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "model.bin").write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    (folder / "config.json").write_text('{"arch": "test"}')
    (folder / "sub" / "vocab.txt").write_text("a\nb\nc\n")
    return folder
