"""Device choice that cannot lie: `auto`, the self-test with its CPU fallback and one-line
cause, models withheld when they work nowhere, and models withdrawn after failing jobs in a
row at run time. Test doubles raise what CTranslate2 raises without cuBLAS 12; no GPU."""

from __future__ import annotations

import ctypes.util
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from lingua_node import _capabilities as capabilities
from lingua_node._asr_choice import AsrOption, ASRRouter
from lingua_node._backends.registry import ENGINES
from lingua_node._backends.tts import TTSRouter
from lingua_node._device import preload_cuda_libraries, resolve_device
from lingua_node._loader import load_recognizer
from lingua_node._pipeline import Backends, Pipeline
from lingua_node._session import Beat, NodeSession, Send
from lingua_node._settings import NodeSettings
from lingua_node.testing.backend_doubles import (
    CUBLAS_MISSING,
    BrokenEverywhereRecognizer,
    CublasMissingRecognizer,
    FailsAfterSelfTestRecognizer,
    PassThroughVAD,
)
from lingua_protocol import AudioData, JobAssign, NodeError, NodeRegisterAck, PipelineConfig

DOUBLES = "lingua_node.testing.backend_doubles"  # module of the engine test doubles


@pytest.fixture
def doubles(monkeypatch: pytest.MonkeyPatch) -> None:
    for cls in (CublasMissingRecognizer, BrokenEverywhereRecognizer, FailsAfterSelfTestRecognizer):
        monkeypatch.setitem(ENGINES["asr"], cls.engine, f"{DOUBLES}:{cls.__name__}")


def settings(tmp_path: Path, engine: str, device: str = "cuda") -> NodeSettings:
    return NodeSettings(home=tmp_path, asr_engine=engine, device=device)  # type: ignore[arg-type]


def test_auto_is_cuda_only_when_a_cuda_device_is_visible() -> None:
    assert resolve_device("auto", lambda: 0) == "cpu"
    assert resolve_device("auto", lambda: 1) == "cuda"
    assert resolve_device("cpu", lambda: 1) == "cpu"
    assert resolve_device("cuda", lambda: 0) == "cuda"  # asked for: the self-test decides
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("gpu", lambda: 1)


def test_the_gpu_compute_type_is_the_best_the_card_supports() -> None:
    from lingua_node._device import compute_type

    def card(*types: str) -> Callable[[str], frozenset[str]]:
        return lambda _device: frozenset(types)

    assert compute_type("cpu") == "int8"
    assert compute_type("cuda", card("float32", "int8", "int8_float16", "float16")) == (
        "int8_float16"
    )
    assert compute_type("cuda", card("float32", "int8_float32", "int8")) == "int8_float32"
    assert compute_type("cuda", card("float32")) == "float32"
    assert compute_type("cuda", card()) == "int8_float16"  # unknown: the usual best; self-tested


def test_the_default_device_is_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LINGUA_NODE_DEVICE", raising=False)
    assert NodeSettings().device == "auto"


def test_nvidia_wheel_libraries_are_preloaded_without_ld_library_path(tmp_path: Path) -> None:
    """A library under an NVIDIA wheel's `lib` folder is loaded into the process; a file that
    is not a library is skipped without failing the node."""
    found = ctypes.util.find_library("z")
    system = next(
        (
            p
            for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib")
            if found and (p := Path(d) / found).is_file()
        ),
        None,
    )
    if system is None:
        pytest.skip("no libz on this system to stand in for cuBLAS")
    lib = tmp_path / "nvidia" / "cublas" / "lib"
    lib.mkdir(parents=True)
    shutil.copy(system, lib / "libcublas-standin.so.12")
    (lib / "libcudnn-broken.so.9").write_bytes(b"not an ELF file")
    shutil.copy(system, lib / "libnvblas.so.12")  # never loaded: it would replace BLAS
    assert preload_cuda_libraries([lib]) == ["libcublas-standin.so.12"]


def test_a_model_without_cublas_falls_back_to_the_cpu_with_one_line(
    doubles: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    withheld: dict[tuple[str, str], str] = {}
    with caplog.at_level(logging.WARNING, logger="lingua.node"):
        option = load_recognizer(
            settings(tmp_path, "test-cublas-missing"), tmp_path, "whisper-x", "cuda", withheld
        )
    assert option is not None
    assert option.recognizer.device == "cpu"
    assert withheld == {}
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1, lines
    line = lines[0]
    assert "\n" not in line
    assert "whisper-x" in line
    assert CUBLAS_MISSING in line
    assert "on the CPU instead" in line
    assert "pip install 'lingua-node[cuda]'" in line


def test_a_model_that_works_nowhere_is_withheld_and_not_advertised(
    doubles: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    withheld: dict[tuple[str, str], str] = {}
    with caplog.at_level(logging.WARNING, logger="lingua.node"):
        option = load_recognizer(
            settings(tmp_path, "test-broken"), tmp_path, "whisper-bad", "cuda", withheld
        )
    assert option is None
    assert "model.bin is corrupt" in withheld[("asr", "whisper-bad")]
    assert any(CUBLAS_MISSING in r.getMessage() for r in caplog.records)
    backends = Backends(
        vad=PassThroughVAD(), asr=ASRRouter([]), tts=TTSRouter([]), withheld=withheld
    )
    asr = next(c for c in capabilities.by_type(backends) if c.type == "ASR")
    assert not asr.ready
    assert asr.reason is not None
    assert "whisper-bad" in asr.reason
    models, _ = capabilities.installed(backends, "cuda")
    assert [(m.model_id, m.enabled) for m in models if m.kind == "asr"] == [("whisper-bad", False)]
    assert capabilities.language_capabilities(backends).asr_languages == []


def job(n: int, src: str = "es") -> JobAssign:
    return JobAssign(
        job_id=f"job-{n}",
        attempt_id="a1",
        session_id="s1",
        utterance_index=n,
        src_lang=src,
        tgt_lang=src,
        audio=AudioData.from_bytes(b"\x10\x00" * 16000),
        pipeline=PipelineConfig(use_nmt=False, use_tts=False),
    )


def test_a_model_failing_jobs_in_a_row_is_withdrawn_and_reported(
    doubles: None, tmp_path: Path
) -> None:
    withheld: dict[tuple[str, str], str] = {}
    ok = load_recognizer(
        settings(tmp_path, "test-cublas-missing", "cpu"),
        tmp_path,
        "en-asr",
        "cpu",
        withheld,
        ["en"],
    )
    flaky = load_recognizer(
        settings(tmp_path, "test-fails-later", "cpu"), tmp_path, "es-asr", "cpu", withheld
    )
    assert ok is not None
    assert flaky is not None
    flaky = AsrOption(flaky.recognizer, frozenset({"es"}), 1, "1")
    backends = Backends(vad=PassThroughVAD(), asr=ASRRouter([ok, flaky]), tts=TTSRouter([]))
    pipeline = Pipeline(backends, "node-t")
    assert "es" in capabilities.language_capabilities(backends).asr_languages  # type: ignore[operator]

    assert pipeline.run(job(0, "en")).success
    codes = [pipeline.run(job(i)).error for i in range(1, 3)]
    assert all(e is not None and e.code == "INFERENCE_BACKEND_ERROR" for e in codes)
    assert backends.health.take_withdrawals() == []  # two in a row: still served
    pipeline.run(job(3))
    withdrawals = backends.health.take_withdrawals()
    assert [(w.kind, w.model_id, w.failures) for w in withdrawals] == [("asr", "es-asr", 3)]
    assert "es" not in (capabilities.language_capabilities(backends).asr_languages or [])
    refused = pipeline.run(job(4))
    assert refused.error is not None
    assert refused.error.code == "MODEL_NOT_AVAILABLE"
    models, _ = capabilities.installed(backends, "cpu")
    assert ("es-asr", False) in [(m.model_id, m.enabled) for m in models]

    session = NodeSession("node-t", 2)
    session.registered(NodeRegisterAck(node_id="node-t", status="ready"))
    actions = session.backend_withdrawn(withdrawals)
    sent = [a.message for a in actions if isinstance(a, Send)]
    assert isinstance(sent[0], NodeError)
    assert sent[0].code == "INFERENCE_BACKEND_ERROR"
    assert "es-asr" in sent[0].message
    assert "out of memory" in sent[0].message
    assert isinstance(actions[-1], Beat)
    assert session.capabilities_changed


def test_a_success_resets_the_count(doubles: None) -> None:
    from lingua_node._health import BackendHealth

    health = BackendHealth(3)
    for _ in range(2):
        assert health.failed("asr", "m", "x") is None
    health.succeeded("asr", "m")
    for _ in range(2):
        assert health.failed("asr", "m", "x") is None
    assert health.failed("asr", "m", "x") is not None
    assert health.failed("asr", "m", "x") is None  # reported once


def test_a_withdrawn_model_stays_out_when_the_store_changes(
    doubles: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lingua_node._health import Withdrawal
    from lingua_node._loader import StoreWatcher
    from lingua_node.testing.backend_doubles import install_fake_asr

    monkeypatch.setitem(
        ENGINES["asr"],
        "faster-whisper",
        f"{DOUBLES}:CublasMissingRecognizer",
    )
    models = tmp_path / "models"
    install_fake_asr(models, "hub-asr", 1000)
    s = NodeSettings(home=tmp_path, models_dir=models, device="cpu", tts=False)
    backends = Backends(vad=PassThroughVAD(), asr=ASRRouter([]), tts=TTSRouter([]))
    watcher = StoreWatcher(s, backends)
    watcher._stamp = None  # the store "changed" since start: load what it holds
    assert watcher()
    assert [o.recognizer.model_id for o in asr_options(backends)] == ["hub-asr"]

    for _ in range(backends.health.failure_limit):
        withdrawal = backends.health.failed("asr", "hub-asr", "CUDA error")
    assert isinstance(withdrawal, Withdrawal)
    backends.withdraw(withdrawal)
    assert asr_options(backends) == []
    install_fake_asr(models, "other-asr", 1000)
    assert watcher()
    assert [o.recognizer.model_id for o in asr_options(backends)] == ["other-asr"]
    assert "withdrawn after 3 failures" in backends.withheld[("asr", "hub-asr")]


def asr_options(backends: Backends) -> list[AsrOption]:
    from lingua_node._asr_choice import asr_models

    return asr_models(backends.asr)
