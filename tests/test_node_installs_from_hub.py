"""A node's model store installing from a real running hub: a good install, an interrupted
download resumed with Range, and a corrupted byte refused with MODEL_VERIFY_FAILED."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from lingua_model_hub.catalog import Catalog
from lingua_model_hub.process import HubProcess
from lingua_node.store import ModelStore
from lingua_protocol import ErrorCode, ProtocolError


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    store = tmp_path_factory.mktemp("hub")
    src = tmp_path_factory.mktemp("model-src")
    (src / "weights.bin").write_bytes(bytes(range(251)) * 40_000)  # ~10 MB, not a multiple of 1 MiB
    (src / "tokenizer.json").write_text(json.dumps({"vocab": list("abc")}))
    catalog = Catalog(store)
    for model_id in ("good", "resume", "corrupt"):
        catalog.publish_dir(
            src,
            {
                "model_id": model_id,
                "version": "1",
                "kind": "nmt",
                "engine": "transformers",
                "src_lang": "en",
                "tgt_lang": "zh",
            },
        )
    with HubProcess(store) as running:
        yield running


def test_install_verifies_and_records_the_model(hub: HubProcess, tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    entry = store.install(hub.url, "good")
    assert entry["version"] == "1" and entry["kind"] == "nmt"
    folder = Path(store.installed()[0]["path"])
    assert (folder / "weights.bin").stat().st_size == 251 * 40_000
    meta = json.loads((folder / "lingua_model.json").read_text())
    assert meta["pairs"] == [["en", "zh"]] and meta["engine"] == "transformers"
    assert not any((tmp_path / "models" / ".staging").rglob("*.part"))
    assert store.remove("good") and store.installed() == []


class Interrupt(Exception):
    pass


def test_an_interrupted_download_resumes_where_it_stopped(hub: HubProcess, tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    seen: list[tuple[str, int]] = []

    def cut_at_half(name: str, done: int, total: int) -> None:
        seen.append((name, done))
        if name == "weights.bin" and done >= total // 2:
            raise Interrupt  # the line drops half way

    with pytest.raises(Interrupt):
        store.install(hub.url, "resume", progress=cut_at_half)
    assert store.installed() == []
    part = next((tmp_path / "models" / ".staging").rglob("weights.bin.part"))
    kept = part.stat().st_size
    assert 0 < kept < 251 * 40_000

    resumed: list[int] = []
    store.install(hub.url, "resume", progress=lambda n, d, t: resumed.append(d))
    assert resumed[0] > kept  # the first block written continued after what was kept
    assert resumed[0] - kept <= 1 << 20
    data = (Path(store.installed()[0]["path"]) / "weights.bin").read_bytes()
    assert data == bytes(range(251)) * 40_000


def test_a_corrupted_byte_is_model_verify_failed_and_nothing_installs(
    hub: HubProcess, tmp_path: Path
) -> None:
    stored = hub.store / "models" / "corrupt" / "1" / "weights.bin"
    data = bytearray(stored.read_bytes())
    data[777] ^= 0xFF
    stored.write_bytes(bytes(data))
    store = ModelStore(tmp_path / "models")
    with pytest.raises(ProtocolError) as info:
        store.install(hub.url, "corrupt")
    assert info.value.code == ErrorCode.MODEL_VERIFY_FAILED
    assert store.installed() == []
    assert not (tmp_path / "models" / "corrupt@1").exists()
    assert not any((tmp_path / "models" / ".staging").iterdir())
