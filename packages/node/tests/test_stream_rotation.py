"""The fair order of stream passes (`streaming/rotation.py`) with a fake clock."""

from __future__ import annotations

from lingua_node._streaming.rotation import Rotation


def test_due_streams_are_served_round_robin_and_none_twice_before_all_once() -> None:
    rot: Rotation[str] = Rotation()
    for key in ("a", "b", "c"):
        rot.add(key, 1.0, 0.0)
    order = []
    for _ in range(3):
        picked = rot.next(0.0)
        assert picked is not None
        order.append(picked[0])
    assert order == ["a", "b", "c"]
    assert rot.next(0.0) is None  # all busy: at most one pass per stream at a time


def test_a_slow_stream_cannot_starve_the_others() -> None:
    """One worker, stream "slow" takes 3 s a pass, the others 0.1 s; all are due every 1 s.
    Over 30 s every stream gets a pass every round: a fast stream waits at most one slow pass
    and the other fast one between two of its passes, never two slow passes in a row."""
    rot: Rotation[str] = Rotation()
    cost = {"slow": 3.0, "x": 0.1, "y": 0.1}
    for key in cost:
        rot.add(key, 1.0, 0.0)
    now, passes = 0.0, dict.fromkeys(cost, 0)
    starts: dict[str, list[float]] = {key: [] for key in cost}
    while now < 30.0:
        picked = rot.next(now)
        if picked is None:
            wait = rot.wait_s(now)
            assert wait is not None
            now += wait
            continue
        key, _ = picked
        started = now
        now += cost[key]
        passes[key] += 1
        starts[key].append(started)
        rot.done(key, started)
    assert passes["slow"] >= 5
    for key in ("x", "y"):
        gaps = [b - a for a, b in zip(starts[key], starts[key][1:], strict=False)]
        assert max(gaps) <= 3.0 + 0.1 + 0.1 + 1e-9
        assert passes[key] >= passes["slow"] - 1


def test_a_final_pass_goes_before_due_partial_passes() -> None:
    rot: Rotation[str] = Rotation()
    rot.add("a", 1.0, 0.0)
    rot.add("b", 1.0, 0.0)
    rot.close("b")
    assert rot.next(0.0) == ("b", True)
    assert rot.next(0.0) == ("a", False)


def test_a_final_pass_overlaps_a_running_partial_pass_but_waits_for_an_endpoint_pass() -> None:
    rot: Rotation[str] = Rotation()
    rot.add("a", 1.0, 0.0)
    assert rot.next(0.0) == ("a", False)
    rot.close("a")
    assert rot.next(0.1, final_may_overlap=lambda key: False) is None  # an endpoint pass runs
    assert rot.wait_s(0.1) == 0.0
    assert rot.next(0.1) == ("a", True)  # a partial pass runs: the final does not wait
    assert rot.busy == {"a": 2}


def test_a_pause_gets_a_pass_at_once_beside_the_running_one_and_never_a_third() -> None:
    rot: Rotation[str] = Rotation()
    rot.add("a", 1.0, 0.0)
    rot.add("b", 1.0, 0.5)
    assert rot.next(0.0) == ("a", False)
    rot.hurry("a", 0.2)
    rot.hurry("b", 0.2)
    assert rot.next(0.2) == ("a", False)
    assert rot.next(0.2) == ("b", False)  # not due until 0.5, but its speaker paused
    rot.hurry("a", 0.3)
    assert rot.next(0.3) is None  # "a" runs two passes already
    rot.done("a", 0.0)
    assert rot.next(0.3) == ("a", False)


def test_next_due_is_one_interval_after_the_last_pass_started() -> None:
    rot: Rotation[str] = Rotation()
    rot.add("a", 0.5, 0.3)
    assert rot.next(0.0) is None
    assert rot.wait_s(0.0) == 0.3
    assert rot.next(0.3) == ("a", False)
    rot.done("a", 0.3)
    assert rot.wait_s(0.4) is not None
    assert abs(rot.wait_s(0.4) - 0.4) < 1e-9
    rot.remove("a")
    assert rot.wait_s(0.4) is None
    assert len(rot) == 0
