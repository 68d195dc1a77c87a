"""Node settings: command-line flags over `LINGUA_NODE_*` environment variables over defaults."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "lingua-node"


class NodeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LINGUA_NODE_", populate_by_name=True)

    scheduler: str = "ws://127.0.0.1:5010/ws/node"
    hub: str = "http://127.0.0.1:5000"
    home: Path = Field(default_factory=default_home)
    models_dir: Path | None = None
    max_jobs: int | None = Field(default=None, ge=1)
    """Jobs at once; None: sized to the cores or GPU memory and calibrated (`concurrency.py`)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """`auto`: CUDA when CTranslate2 sees a GPU, else the CPU; every model is self-tested on
    it and falls back to the CPU alone when it fails there (`device.py`, `loader.py`)."""
    token: str | None = Field(default=None, validation_alias="LINGUA_NODE_TOKEN")
    accept_public_jobs: bool = True
    heartbeat_interval_s: float = 15.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    asr_engine: str = "faster-whisper"
    """Recognizer engine by registry name (`lingua_node._backends.registry`)."""
    vad_engine: str = "silero-onnx"
    """Voice-activity engine by registry name."""
    asr_beam_size: int = Field(default=5, ge=1, le=10)
    """Beam search width; 5 is chosen from measurements (docs/node.md, backends/asr.py)."""
    asr_short_context: bool = True
    asr_batch: Literal["auto", "on", "off"] = "auto"
    """Put concurrent utterances into one model call; `auto`: on CUDA only
    (`backends/asr_batching.py`, measured in docs/node.md)."""
    asr_batch_window_ms: float = Field(default=10.0, ge=0, le=1000)
    """Longest wait of a batch's first utterance for others to join it."""
    asr_model: str | None = None  # pin: this installed ASR model id serves its languages
    cpu_threads: int = Field(default=0, ge=0)
    """Threads per job on the CPU; 0: the cores divided among the jobs (`concurrency.py`)."""
    binary_audio: bool = True
    tts: bool = True
    self_test: bool = True
    """Run every model once on a built-in clip when it is loaded; only what passes is served."""
    model_memory_budget_mb: int | None = Field(default=None, ge=1)
    """Most memory (MB, 10^6 bytes, counted as model file sizes) loaded models may take;
    larger hub models are skipped when over it (`memory_budget.py`). None: no budget."""
    stream_interval_ms: int = Field(default=1000, ge=200, le=10000)
    """Time between recognition passes of a stream when its job asks for none (advertised as
    `partial_update_interval_ms`; docs/node.md "Streaming" has the trade-off)."""
    max_streams: int | None = Field(default=None, ge=0)
    """Streams held at once; None: measured (`concurrency.stream_capacity`); 0: no streaming."""
    backend_failure_limit: int = Field(default=3, ge=1)
    """Failures in a row after which a model is withdrawn at run time (`health.py`)."""

    @property
    def models_path(self) -> Path:
        return self.models_dir or (self.home / "models")
