"""Which device the node's models run on, and the CUDA runtime libraries they need.

`--device auto` (the default) asks CTranslate2 how many CUDA devices it sees; with at least
one the node tries CUDA, else it uses the CPU. Seeing a GPU is not the same as being able to
use it: on a machine whose system CUDA is another major version, CTranslate2 loads a model on
the GPU and only the first transcription fails ("Library libcublas.so.12 is not found or
cannot be loaded"). So the device chosen here is only a first try: every model is self-tested
on it when it is loaded (`selftest.py`), and one that fails there is loaded on the CPU instead
(`loader.py`), with the line `cuda_failure_line` writes.

The CUDA 12 builds of CTranslate2 need cuBLAS 12 and cuDNN 9. `pip install 'lingua-node[cuda]'`
brings them as NVIDIA's wheels (`nvidia-cublas-cu12`, `nvidia-cudnn-cu12`), which install
shared libraries under `site-packages/nvidia/*/lib/` where the dynamic loader never looks.
`preload_cuda_libraries` loads them with `ctypes` (RTLD_GLOBAL) before any model is loaded;
CTranslate2's own `dlopen("libcublas.so.12")` then finds the library already in the process by
its soname, so nobody has to set `LD_LIBRARY_PATH`.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("lingua.node.device")

DEVICES = ("auto", "cpu", "cuda")
CUDA_FIX = (
    "install the CUDA 12 runtime wheels with `pip install 'lingua-node[cuda]'` "
    "(cuBLAS 12 and cuDNN 9, loaded from the installed packages, no LD_LIBRARY_PATH needed), "
    "or start the node with --device cpu to silence this"
)


def cuda_device_count() -> int:
    """CUDA devices CTranslate2 can see (0 when it is a CPU-only build or has no driver)."""
    try:
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count())
    except Exception as exc:  # noqa: BLE001  (a native library: any failure means no usable GPU)
        log.debug("cannot count CUDA devices: %s", exc)
        return 0


def resolve_device(requested: str, count: Callable[[], int] = cuda_device_count) -> str:
    """`cpu` or `cuda` for a requested `auto`, `cpu` or `cuda`. `auto` is `cuda` only when a
    CUDA device is visible; the self-test decides, per model, whether it really works."""
    if requested not in DEVICES:
        raise ValueError(f"unknown device {requested!r} (one of {', '.join(DEVICES)})")
    if requested != "auto":
        return requested
    return "cuda" if count() > 0 else "cpu"


CUDA_COMPUTE_PREFERENCE = ("int8_float16", "float16", "int8_float32", "int8", "float32")


def supported_compute_types(device: str) -> frozenset[str]:
    """What CTranslate2 can run efficiently on `device` (empty when it cannot say)."""
    try:
        import ctranslate2

        return frozenset(ctranslate2.get_supported_compute_types(device))
    except Exception as exc:  # noqa: BLE001  (no driver, a CPU-only build: nothing to choose)
        log.debug("cannot list compute types for %s: %s", device, exc)
        return frozenset()


def compute_type(
    device: str, supported: Callable[[str], frozenset[str]] = supported_compute_types
) -> str:
    """CTranslate2's compute type for Whisper on `device`: 8-bit weights on the CPU; on a GPU
    the first of `CUDA_COMPUTE_PREFERENCE` it supports (8-bit weights with 16-bit
    activations on most; 16-bit floats, then 8-bit or 32-bit ones on older cards that lack
    them, e.g. before compute capability 7.0), since asking for an unsupported type fails
    the load."""
    if device != "cuda":
        return "int8"
    available = supported(device)
    return next((t for t in CUDA_COMPUTE_PREFERENCE if t in available), "int8_float16")


PRELOADED = ("libcublas", "libcudnn", "libcudart")
"""What CTranslate2 needs from the NVIDIA wheels. Nothing else is loaded: `libnvblas`, for
one, would replace the BLAS functions of every library in the process."""


def nvidia_library_dirs() -> list[Path]:
    """`lib` folders of the installed NVIDIA runtime wheels (`nvidia.cublas`, `nvidia.cudnn`,
    and any other `nvidia.*` wheel), empty when none is installed."""
    spec = importlib.util.find_spec("nvidia")
    if spec is None or not spec.submodule_search_locations:
        return []
    out: list[Path] = []
    for root in spec.submodule_search_locations:
        out.extend(sorted(p for p in Path(root).glob("*/lib") if p.is_dir()))
    return out


def preload_cuda_libraries(dirs: list[Path] | None = None) -> list[str]:
    """Load every shared library of the NVIDIA wheels into the process (RTLD_GLOBAL), so that
    CTranslate2 finds cuBLAS and cuDNN without `LD_LIBRARY_PATH`. Returns the names loaded.

    The libraries depend on each other (cuBLAS on cuBLASLt, cuDNN's parts on its core), and a
    library loads only after what it needs: so the list is tried again while a pass loads
    something new. What never loads is logged at debug level, not fatal: the self-test is what
    decides whether CUDA works."""
    pending = [
        p
        for d in (nvidia_library_dirs() if dirs is None else dirs)
        for p in sorted(d.glob("lib*.so*"))
        if p.is_file() and p.name.startswith(PRELOADED)
    ]
    loaded: list[str] = []
    errors: dict[str, str] = {}
    while pending:
        left = []
        for path in pending:
            try:
                ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
                loaded.append(path.name)
            except OSError as exc:
                errors[path.name] = str(exc)
                left.append(path)
        if len(left) == len(pending):
            break
        pending = left
    for name in (p.name for p in pending):
        log.debug("cannot preload %s: %s", name, errors.get(name))
    if loaded:
        log.info("preloaded %d NVIDIA runtime libraries from the installed wheels", len(loaded))
    return loaded


def cuda_failure_line(
    kind: str,
    model_id: str,
    exc: BaseException,
    fallback: bool,
    cpu_failure: BaseException | None = None,
) -> str:
    """The one line an operator sees when a model cannot run on the GPU: which model, the
    cause as the library said it, what the node does about it, and the fix."""
    if fallback:
        then = "serving it on the CPU instead"
    else:
        cause = f"{type(cpu_failure).__name__}: {cpu_failure}"
        then = f"it failed on the CPU too ({cause}), not serving it"
    return f"{kind} model {model_id} failed its self-test on CUDA ({exc}); {then}. Fix: {CUDA_FIX}"
