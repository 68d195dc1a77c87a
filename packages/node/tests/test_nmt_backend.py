from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from lingua_node._backends.nmt import TextTranslator
from lingua_node.testing.tiny_nmt import build_tiny_m2m100


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_m2m100(tmp_path_factory.mktemp("nmt") / "tiny-m2m100")


def test_the_loader_reads_pairs_from_the_model_manifest(tiny_model: Path) -> None:
    t = TextTranslator(tiny_model)
    assert sorted(t.pairs) == [("en", "zh"), ("zh", "en")]
    assert t.arch == "m2m_100"
    assert t.engine == "transformers"


def test_translation_forces_the_target_language_token(tiny_model: Path) -> None:
    t = TextTranslator(tiny_model)
    calls: list[dict[str, object]] = []
    original = t.model.generate  # type: ignore[union-attr]

    def spy(**kwargs: object) -> object:
        calls.append(kwargs)
        return original(**kwargs)

    t.model.generate = spy  # type: ignore[union-attr,method-assign]
    out = t.translate("hello world", "en", "zh")
    assert isinstance(out, str)
    assert calls[0]["forced_bos_token_id"] == t.tokenizer.convert_tokens_to_ids("__zh__")
    assert t.tokenizer.src_lang == "en"
    assert t.translate("   ", "en", "zh") == ""


def test_a_ctranslate2_conversion_loads_and_translates(tiny_model: Path, tmp_path: Path) -> None:
    ct2 = pytest.importorskip("ctranslate2")
    out = tmp_path / "tiny-ct2"
    ct2.converters.TransformersConverter(str(tiny_model)).convert(str(out), quantization="int8")
    weights = {"model.safetensors", "config.json", "generation_config.json"}
    for f in tiny_model.iterdir():  # the tokenizer's files travel with the converted model
        if f.name not in weights and not (out / f.name).exists():
            shutil.copy(f, out / f.name)
    meta = json.loads((tiny_model / "lingua_model.json").read_text())
    (out / "lingua_model.json").write_text(json.dumps(dict(meta, engine="ctranslate2")))
    t = TextTranslator(out, max_new_tokens=32)  # random weights never say </s>
    assert t.engine == "ctranslate2"
    assert isinstance(t.translate("good morning", "en", "zh"), str)
