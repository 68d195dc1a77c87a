"""End-to-end fixtures: real processes (hub, scheduler, nodes) on free ports, real models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lingua_client import LocalCluster

E2E_TIMEOUT_S = 600
"""Per-test limit for end-to-end tests (real models load); every other test has the
project's default (`timeout` in the root pyproject.toml)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.timeout(E2E_TIMEOUT_S))
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def shared_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The node's embedded models, built from packages once for the whole e2e run."""
    from lingua_node import ensure_embedded

    folder = tmp_path_factory.mktemp("e2e-models")
    ensure_embedded(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_nmt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lingua_node.testing.tiny_nmt import build_tiny_m2m100

    return build_tiny_m2m100(tmp_path_factory.mktemp("tiny-nmt") / "tiny-m2m100")


@pytest.fixture
def cluster(tmp_path: Path, shared_models: Path) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path / "cluster", models_dir=shared_models) as c:
        yield c
