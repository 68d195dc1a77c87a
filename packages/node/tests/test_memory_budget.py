"""The operator's memory budget for loaded models: what fits is loaded, the larger models
that do not are skipped with one log line and reported as withheld; no budget loads all."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from lingua_node._asr_choice import AsrOption
from lingua_node._backends.registry import ENGINES
from lingua_node._loader import load_recognizers, memory_budget
from lingua_node._memory_budget import MB, MemoryBudget
from lingua_node._settings import NodeSettings
from lingua_node._store import ModelStore
from lingua_node.testing.backend_doubles import CublasMissingRecognizer, install_fake_asr

DOUBLES = "lingua_node.testing.backend_doubles"  # module of the engine test doubles


def test_a_model_over_the_budget_is_refused_with_the_reason() -> None:
    budget = MemoryBudget(10 * MB)
    budget.count(6 * MB)
    assert budget.admit("asr", "small", 3 * MB) is None
    why = budget.admit("asr", "large", 2 * MB)
    assert why is not None
    assert "over the memory budget of 10 MB" in why
    assert budget.used_bytes == 9 * MB
    assert MemoryBudget(None).admit("asr", "any", 10**12) is None


@pytest.mark.parametrize("budget_mb", [3, None])
def test_the_larger_hub_models_are_skipped_when_over_the_budget(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    budget_mb: int | None,
) -> None:
    monkeypatch.setitem(
        ENGINES["asr"],
        "faster-whisper",
        f"{DOUBLES}:CublasMissingRecognizer",
    )
    store = ModelStore(tmp_path / "models")
    for model_id, size in (("large-asr", 3 * MB), ("small-asr", MB // 2)):
        install_fake_asr(store.root, model_id, size)
    settings = NodeSettings(home=tmp_path, device="cpu", model_memory_budget_mb=budget_mb)
    budget = memory_budget(settings)
    embedded = AsrOption(CublasMissingRecognizer(model_id="embedded"), frozenset({"en"}), 2 * MB)
    budget.count(embedded.size_bytes)
    withheld: dict[tuple[str, str], str] = {}
    with caplog.at_level(logging.WARNING, logger="lingua.node"):
        router = load_recognizers(settings, store, [embedded], [], withheld, None, budget)
    loaded = [o.recognizer.model_id for o in router.options]
    if budget_mb is None:
        assert loaded == ["embedded", "small-asr", "large-asr"]
        assert not withheld
        return
    assert loaded == ["embedded", "small-asr"]
    assert "over the memory budget of 3 MB" in withheld[("asr", "large-asr")]
    lines = [r.getMessage() for r in caplog.records if "large-asr" in r.getMessage()]
    assert len(lines) == 1
    assert "LINGUA_NODE_MODEL_MEMORY_BUDGET_MB" in lines[0]


def test_a_model_that_fails_to_load_gives_its_room_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        ENGINES["asr"],
        "faster-whisper",
        f"{DOUBLES}:BrokenEverywhereRecognizer",
    )
    store = ModelStore(tmp_path / "models")
    install_fake_asr(store.root, "broken-asr", MB)
    settings = NodeSettings(home=tmp_path, device="cpu", model_memory_budget_mb=10)
    budget = memory_budget(settings)
    withheld: dict[tuple[str, str], str] = {}
    router = load_recognizers(settings, store, [], [], withheld, None, budget)
    assert router.options == []
    assert ("asr", "broken-asr") in withheld
    assert budget.used_bytes == 0
