"""GPU facts when a GPU is present (NVIDIA via NVML); nothing is reported when it is not."""

from __future__ import annotations

from lingua_protocol import GpuInfo


def _nvml():  # type: ignore[no-untyped-def]
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml
    except Exception:  # noqa: BLE001  (no pynvml, no driver, no GPU: all mean no NVML figures)
        return None


def gpu_inventory() -> list[GpuInfo] | None:
    nv = _nvml()
    if nv is None:
        return None
    out = []
    for i in range(nv.nvmlDeviceGetCount()):
        h = nv.nvmlDeviceGetHandleByIndex(i)
        name = nv.nvmlDeviceGetName(h)
        mem = nv.nvmlDeviceGetMemoryInfo(h).total / 2**30
        out.append(
            GpuInfo(name=name if isinstance(name, str) else name.decode(), memory_gb=round(mem, 1))
        )
    return out


def gpu_usage() -> tuple[float, float] | None:
    """(utilisation %, memory used %) of the first GPU."""
    nv = _nvml()
    if nv is None:
        return None
    try:
        h = nv.nvmlDeviceGetHandleByIndex(0)
        util = nv.nvmlDeviceGetUtilizationRates(h).gpu
        mem = nv.nvmlDeviceGetMemoryInfo(h)
        return float(util), 100.0 * mem.used / mem.total
    except Exception:  # noqa: BLE001  (a GPU gone or a driver error: no figures this beat)
        return None
