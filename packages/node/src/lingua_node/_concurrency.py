"""How many jobs a node runs at once, and how many CPU threads each gets.

Sizing (`plan_workers`), before the models load, since CTranslate2 fixes both when it loads:

- CPU: one job per core (at most 8), each with the cores but one divided among the jobs (at
  least one thread each): one core is left to the node's event loop, audio decoding, VAD, TTS
  and whatever else runs on the machine. Two threads of one job on a two-core machine beside a
  scheduler and a client took the ASR of a 3.6 s clip from ~225 ms to 300-450 ms (threads
  waiting for each other whenever one is descheduled). Measured on two cores (docs/node.md):
  two jobs of one thread each serve about 1.9x the utterances a second of one job with two
  threads, at the same median latency; Whisper's small matrix products gain little from a
  second thread.
- CUDA: one job per 2 GiB of GPU memory, 1 to 8: CTranslate2 runs that many requests on the
  device in parallel, and each needs room for its activations beside the shared weights.
- The operator's `--max-jobs` / `--cpu-threads` win.

Calibration (`calibrated_max_jobs`), after the self-test: the default recogniser transcribes
the built-in clip (3.6 s) `workers` times at once, as a full node would, and the slowest of
them is timed. The node advertises the planned number of jobs when that stays within
`LATENCY_BUDGET_RTF` of the clip's length (0.2: the ASR of a 5 s utterance within 1 s even on
a full node); otherwise fewer, in proportion (a job's time grows with the jobs sharing the
machine), and never below 1. A slow or busy machine thus takes fewer jobs at once instead of
answering every one late. The operator's `--max-jobs` is advertised as given.

Streams (`stream_capacity`): a live stream needs one recognition pass per interval, and a
pass costs about one transcription of a buffer of a few seconds, which is what the
calibration timed (`full_load_s`, with every worker busy). `workers` workers thus run
`workers * interval / full_load_s` passes per interval: that many streams keep their
interval; one more and every stream's interval stretches (the rotation is fair). The node
advertises that many, at most `MAX_STREAMS`, at least 1. Unmeasured (self-test off):
`UNMEASURED_STREAMS_PER_WORKER` per worker. The operator's `--max-streams` wins (0: no
streaming).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LATENCY_BUDGET_RTF = 0.2
CORES_PER_CPU_JOB = 1
MAX_CPU_JOBS = 8
GPU_GIB_PER_JOB = 2.0
MAX_GPU_JOBS = 8
MAX_STREAMS = 64
UNMEASURED_STREAMS_PER_WORKER = 2


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    workers: int
    """Jobs the models are loaded for (CTranslate2's `num_workers`), the most the node takes."""
    cpu_threads: int
    """Threads per job on the CPU (CTranslate2's `cpu_threads`); 0: the library's choice."""
    operator_set: bool
    """The operator fixed `workers` (`--max-jobs`): calibration does not lower it."""


def plan_workers(
    device: str,
    cores: int,
    gpu_memory_gib: float | None = None,
    max_jobs: int | None = None,
    cpu_threads: int = 0,
) -> WorkerPlan:
    """The plan for `device` on a machine with `cores` logical cores (and the GPU's memory)."""
    cores = max(1, cores)
    if max_jobs is not None:
        workers = max(1, max_jobs)
    elif device == "cuda":
        memory = gpu_memory_gib if gpu_memory_gib is not None else GPU_GIB_PER_JOB
        workers = max(1, min(MAX_GPU_JOBS, int(memory // GPU_GIB_PER_JOB)))
    else:
        workers = max(1, min(MAX_CPU_JOBS, cores // CORES_PER_CPU_JOB))
    threads = cpu_threads or (cpu_threads_per_job(cores, workers) if device != "cuda" else 0)
    return WorkerPlan(workers, threads, max_jobs is not None)


def cpu_threads_per_job(cores: int, workers: int) -> int:
    """The cores but one, divided among the jobs; at least one thread each."""
    return max(1, (max(1, cores) - 1) // max(1, workers))


def calibrated_max_jobs(plan: WorkerPlan, clip_s: float, full_load_s: float | None) -> int:
    """The `max_concurrent_jobs` to advertise: the plan, lowered in proportion when the
    slowest of `plan.workers` simultaneous transcriptions of a `clip_s` clip took longer than
    the budget (`full_load_s`). Unmeasured or set by the operator: the plan."""
    if plan.operator_set or full_load_s is None or clip_s <= 0 or full_load_s <= 0:
        return plan.workers
    budget_s = LATENCY_BUDGET_RTF * clip_s
    if full_load_s <= budget_s:
        return plan.workers
    return max(1, min(plan.workers, math.floor(plan.workers * budget_s / full_load_s)))


def stream_capacity(workers: int, interval_s: float, full_load_s: float | None) -> int:
    """The `max_concurrent_streams` to advertise (see the module's docstring)."""
    workers = max(1, workers)
    if full_load_s is None or full_load_s <= 0:
        return min(MAX_STREAMS, workers * UNMEASURED_STREAMS_PER_WORKER)
    return max(1, min(MAX_STREAMS, math.floor(workers * interval_s / full_load_s)))
