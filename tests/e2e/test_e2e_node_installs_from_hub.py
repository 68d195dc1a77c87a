"""A node's model store installing from a real running hub: a good install, an interrupted
download resumed with Range, and a corrupted byte refused with MODEL_VERIFY_FAILED; a manifest
that breaks the shared manifest model refused before any download; and the node publishing its
embedded defaults to a hub (`node models publish-bundled`)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from lingua_model_hub import Catalog, HubProcess
from lingua_node import WHISPER_SHA256, ModelStore
from lingua_protocol import ErrorCode, HubModelVersion, ProtocolError

from .e2e_support import SPEECH

HUB_TOKEN = "bundled-test-token"


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
    assert entry["version"] == "1"
    assert entry["kind"] == "nmt"
    folder = Path(store.installed()[0]["path"])
    assert (folder / "weights.bin").stat().st_size == 251 * 40_000
    meta = json.loads((folder / "lingua_model.json").read_text())
    assert meta["pairs"] == [["en", "zh"]]
    assert meta["engine"] == "transformers"
    assert not any((tmp_path / "models" / ".staging").rglob("*.part"))
    assert store.remove("good")
    assert store.installed() == []


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


def test_a_manifest_with_an_unsafe_path_is_refused_before_any_download(tmp_path: Path) -> None:
    """A scripted test double of a hostile hub: its manifest lists `../escape.bin`. The shared
    manifest model refuses it, so no file request is ever made."""
    requested: list[str] = []
    manifest = {
        "model_id": "evil",
        "version": "1",
        "kind": "nmt",
        "engine": "transformers",
        "files": [{"path": "../escape.bin", "size": 1, "sha256": "0" * 64}],
        "total_size": 1,
        "created": 0.0,
    }

    def scripted_hub(request: httpx.Request) -> httpx.Response:
        requested.append(request.url.path)
        if request.url.path.endswith("/manifest"):
            return httpx.Response(200, json=manifest)
        return httpx.Response(200, content=b"x")

    store = ModelStore(tmp_path / "models")
    client = httpx.Client(base_url="http://hub", transport=httpx.MockTransport(scripted_hub))
    with pytest.raises(ProtocolError) as info:
        store.install("http://hub", "evil", "1", client=client)
    assert info.value.code == ErrorCode.MODEL_VERIFY_FAILED
    assert requested == ["/api/v1/models/evil/1/manifest"]
    assert not (tmp_path / "escape.bin").exists()
    assert store.installed() == []


def _publish_bundled(hub: HubProcess, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "lingua_node",
            "models",
            "publish-bundled",
            "--hub",
            hub.url,
            "--hub-token",
            HUB_TOKEN,
            "--home",
            str(home),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow  # real processes and real models: seconds
def test_the_node_publishes_its_embedded_defaults_to_a_hub(tmp_path: Path) -> None:
    """Over the hub's HTTP API with its token: whisper-base (the joined, verified model file),
    the Piper voice and Silero VAD; a second run finds them there."""
    with HubProcess(tmp_path / "hub", token=HUB_TOKEN) as hub:
        first = _publish_bundled(hub, tmp_path / "node")
        assert first.returncode == 0, first.stderr
        assert "published whisper-base@1" in first.stdout
        whisper = HubModelVersion.model_validate_json(
            httpx.get(f"{hub.url}/api/v1/models/whisper-base/1/manifest").content
        )
        assert whisper.kind == "asr"
        assert {"en", "zh", "de"} <= set(whisper.languages)
        by_path = {f.path: f for f in whisper.files}
        assert by_path["model.bin"].sha256 == WHISPER_SHA256
        assert ".verified" not in by_path
        listed = {m["model_id"] for m in httpx.get(f"{hub.url}/api/v1/models").json()["models"]}
        assert {"whisper-base", "silero-vad"} <= listed
        again = _publish_bundled(hub, tmp_path / "node")
        assert again.returncode == 0, again.stderr
        assert "whisper-base@1 already published" in again.stdout


@pytest.mark.slow  # real processes and real models: seconds
def test_an_asr_model_installed_while_running_is_served_for_its_language(tmp_path: Path) -> None:
    """A copy of the embedded Whisper published as `whisper-base-es` for Spanish: installed
    while the node runs, the store watcher loads it, the node advertises it and Spanish goes to
    it; removed, it is gone and Spanish goes back to the embedded model. No restart."""
    from lingua_node import NodeSettings, StoreWatcher, decode_audio, load_backends
    from lingua_node import _capabilities as capabilities

    settings = NodeSettings(home=tmp_path / "home", models_dir=tmp_path / "models", tts=False)
    backends = load_backends(settings)
    watcher = StoreWatcher(settings, backends)
    assert backends.asr.choose("es").model_id == "whisper-base"  # type: ignore[attr-defined]

    hub_store = tmp_path / "hub"
    Catalog(hub_store).publish_dir(
        tmp_path / "models" / "whisper-base",
        {
            "model_id": "whisper-base-es",
            "version": "1",
            "kind": "asr",
            "engine": "faster-whisper",
            "languages": ["es"],
        },
    )
    store = ModelStore(tmp_path / "models")
    with HubProcess(hub_store) as hub:
        store.install(hub.url, "whisper-base-es")
    assert watcher() is True
    assert backends.asr.choose("es").model_id == "whisper-base-es"  # type: ignore[attr-defined]
    assert backends.asr.choose("en").model_id == "whisper-base"  # type: ignore[attr-defined]
    models, _ = capabilities.installed(backends, "cpu")
    asr = {(m.model_id, m.version): m.languages for m in models if m.kind == "asr"}
    assert asr[("whisper-base-es", "1")] == ["es"]
    assert len(asr[("whisper-base", None)] or []) > 90
    speech = (SPEECH / "es_station.wav").read_bytes()
    heard = backends.asr.transcribe(decode_audio(speech, "wav", 16000), "es")
    assert "estación" in heard.text.lower()
    assert heard.language == "es"

    assert store.remove("whisper-base-es")
    assert watcher() is True
    assert backends.asr.choose("es").model_id == "whisper-base"  # type: ignore[attr-defined]
    models, _ = capabilities.installed(backends, "cpu")
    assert [m.model_id for m in models if m.kind == "asr"] == ["whisper-base"]


@dataclass
class ScriptedRecognizer:
    """A test double for the node's recogniser: this test is about voices only."""

    model_id: str = "scripted-asr"
    engine: str = "scripted"
    languages: list[str] = field(default_factory=lambda: ["en"])
    multilingual: bool = False

    def transcribe(self, audio: object, language: str | None, *, task: str = "transcribe") -> Any:
        raise AssertionError("not called")


@pytest.mark.slow  # real processes and real models: seconds
def test_a_voice_installed_while_running_is_served_without_a_restart(tmp_path: Path) -> None:
    """The embedded Piper voice republished as a German voice: installed while the node runs,
    the store watcher loads it and German speech goes to it; removed, it is gone."""
    from lingua_node import Backends, NodeSettings, StoreWatcher, TTSRouter, piper_voice_path

    voice = piper_voice_path()
    assert voice is not None
    folder = tmp_path / "voice"
    folder.mkdir()
    (folder / "de_DE-copy-medium.onnx").write_bytes(voice.read_bytes())
    config = json.loads(Path(f"{voice}.json").read_text())
    config["language"] = {**config.get("language", {}), "code": "de_DE"}
    (folder / "de_DE-copy-medium.onnx.json").write_text(json.dumps(config))
    hub_store = tmp_path / "hub"
    Catalog(hub_store).publish_dir(
        folder,
        {
            "model_id": "de-copy",
            "version": "1",
            "kind": "tts",
            "engine": "piper",
            "languages": ["de"],
        },
    )

    settings = NodeSettings(home=tmp_path / "home", models_dir=tmp_path / "models")
    backends = Backends(vad=None, asr=ScriptedRecognizer(), tts=TTSRouter([]))  # type: ignore[arg-type]
    watcher = StoreWatcher(settings, backends)
    store = ModelStore(tmp_path / "models")
    with HubProcess(hub_store) as hub:
        store.install(hub.url, "de-copy")
    assert watcher() is True
    german = backends.tts.voice_for("de")
    assert german is not None
    assert german.model_id == "de_DE-copy-medium"
    speech, used = backends.tts.speak("Guten Morgen", "de")
    assert used is german
    assert len(speech.pcm16) > 1000

    assert store.remove("de-copy")
    assert watcher() is True
    assert "de_DE-copy-medium" not in {v.model_id for v in backends.tts.voices}
