"""Streaming Silero VAD on the ONNX model that faster-whisper ships (the node uses the same
model), fed 32 ms windows as the microphone delivers them, with its recurrent state kept."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

WINDOW = 512  # samples at 16 kHz: the window Silero v5/v6 is trained on
CONTEXT = 64


def silero_onnx_path() -> Path:
    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("faster-whisper is not installed; it carries the Silero model")
    found = sorted((Path(spec.origin).parent / "assets").glob("silero*.onnx"))
    if not found:
        raise FileNotFoundError("no Silero VAD model inside faster-whisper")
    return found[-1]


class SileroStream:
    """Speech probability per 512-sample window; `reset()` between independent streams."""

    def __init__(self, path: Path | None = None) -> None:
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 4
        self.session = onnxruntime.InferenceSession(
            str(path or silero_onnx_path()), providers=["CPUExecutionProvider"], sess_options=opts
        )
        self.reset()

    def reset(self) -> None:
        self.h = np.zeros((1, 1, 128), dtype=np.float32)
        self.c = np.zeros((1, 1, 128), dtype=np.float32)
        self.context = np.zeros(CONTEXT, dtype=np.float32)

    def __call__(self, window: np.ndarray) -> float:
        x = np.concatenate([self.context, window.astype(np.float32)])[None, :]
        out, self.h, self.c = self.session.run(None, {"input": x, "h": self.h, "c": self.c})
        self.context = window[-CONTEXT:].astype(np.float32)
        return float(np.asarray(out).reshape(-1)[0])
