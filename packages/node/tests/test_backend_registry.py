"""Engines are found by name, and the modules that orchestrate a job import no engine library."""

from __future__ import annotations

import subprocess
import sys

import pytest
from lingua_node._backends.registry import ENGINES, UnknownEngine, engine_class, engine_names


def test_an_unknown_engine_names_the_known_ones() -> None:
    with pytest.raises(UnknownEngine, match="faster-whisper"):
        engine_class("asr", "whisper.cpp")


@pytest.mark.parametrize(
    ("kind", "name"), [(kind, name) for kind, table in ENGINES.items() for name in table]
)
def test_every_registered_engine_resolves_to_a_class(kind: str, name: str) -> None:
    cls = engine_class(kind, name)  # type: ignore[call-overload]
    assert isinstance(cls, type)
    assert name in engine_names(kind)  # type: ignore[arg-type]


def test_the_pipeline_and_loader_import_no_engine_library() -> None:
    code = (
        "import sys, lingua_node._pipeline, lingua_node._loader, lingua_node._capabilities;"
        "heavy = [m for m in ('faster_whisper', 'ctranslate2', 'piper', 'transformers', 'torch')"
        " if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
