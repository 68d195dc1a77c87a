"""The scheduler process tunes the garbage collector once it has started (`tune_collector`)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from lingua_scheduler.__main__ import YOUNG_COLLECTION_THRESHOLD, tune_collector


@pytest.fixture
def collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()


@pytest.mark.usefixtures("collector")
def test_what_lives_at_start_is_frozen_and_young_collections_are_rarer() -> None:
    gc.unfreeze()
    _, middle, old = gc.get_threshold()
    tune_collector()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, middle, old)
    assert YOUNG_COLLECTION_THRESHOLD > 700  # CPython's default young threshold
