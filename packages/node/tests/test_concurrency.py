"""Jobs at once and threads per job: sized to the cores or the GPU's memory, then calibrated
on the built-in clip; the operator's numbers win."""

from __future__ import annotations

from lingua_node._concurrency import WorkerPlan, calibrated_max_jobs, plan_workers


def test_cpu_jobs_get_one_core_each_up_to_eight() -> None:
    assert plan_workers("cpu", 2) == WorkerPlan(2, 1, False)
    assert plan_workers("cpu", 1) == WorkerPlan(1, 1, False)
    assert plan_workers("cpu", 32) == WorkerPlan(8, 3, False)  # 31 cores among 8 jobs


def test_one_core_is_left_to_the_rest_of_the_node() -> None:
    assert plan_workers("cpu", 2, max_jobs=1) == WorkerPlan(1, 1, True)
    assert plan_workers("cpu", 16, max_jobs=1) == WorkerPlan(1, 15, True)
    assert plan_workers("cpu", 4, cpu_threads=2) == WorkerPlan(4, 2, False)


def test_gpu_jobs_follow_its_memory_within_bounds() -> None:
    assert plan_workers("cuda", 16, gpu_memory_gib=8).workers == 4
    assert plan_workers("cuda", 16, gpu_memory_gib=80).workers == 8
    assert plan_workers("cuda", 16, gpu_memory_gib=1).workers == 1
    assert plan_workers("cuda", 16).cpu_threads == 0  # the library's choice on a GPU


def test_the_operator_max_jobs_wins_and_is_not_calibrated() -> None:
    plan = plan_workers("cpu", 2, max_jobs=3)
    assert plan == WorkerPlan(3, 1, True)
    assert calibrated_max_jobs(plan, clip_s=3.6, full_load_s=10.0) == 3


def test_calibration_keeps_the_plan_when_a_full_node_is_fast_enough() -> None:
    plan = plan_workers("cuda", 16, gpu_memory_gib=16)  # 8 jobs
    assert calibrated_max_jobs(plan, clip_s=3.6, full_load_s=0.5) == 8  # 0.14 x real time


def test_calibration_lowers_jobs_in_proportion_when_a_full_node_is_slow() -> None:
    plan = plan_workers("cpu", 16)  # 8 jobs of 2 threads
    # 8 at once took 1.44 s each for 3.6 s of audio: 0.4 x real time, twice the 0.2 budget
    assert calibrated_max_jobs(plan, clip_s=3.6, full_load_s=1.44) == 4
    assert calibrated_max_jobs(plan, clip_s=3.6, full_load_s=30.0) == 1  # never below one
    assert calibrated_max_jobs(plan, clip_s=3.6, full_load_s=None) == 8  # not measured


def test_a_loaded_node_advertises_what_it_measured(backends) -> None:  # type: ignore[no-untyped-def]
    assert backends.max_jobs >= 1
    assert "at once took" in backends.sizing
