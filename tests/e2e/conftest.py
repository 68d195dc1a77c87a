"""End-to-end fixtures: real processes (hub, scheduler, nodes) on free ports, real models."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lingua_client.local_cluster import LocalCluster

sys.path.insert(0, str(Path(__file__).parent))
from e2e_support import ROOT

NODE_TESTS = str(ROOT / "packages" / "node" / "tests")  # the tiny NMT model builder


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "e2e" in str(item.fspath):
            item.add_marker(pytest.mark.timeout(600))
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def shared_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The node's embedded models, built from packages once for the whole e2e run."""
    from lingua_node.embedded import ensure_embedded

    folder = tmp_path_factory.mktemp("e2e-models")
    ensure_embedded(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_nmt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if NODE_TESTS not in sys.path:
        sys.path.append(NODE_TESTS)
    from tiny_nmt import build_tiny_m2m100

    return build_tiny_m2m100(tmp_path_factory.mktemp("tiny-nmt") / "tiny-m2m100")


@pytest.fixture
def cluster(tmp_path: Path, shared_models: Path) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path / "cluster", models_dir=shared_models) as c:
        yield c
