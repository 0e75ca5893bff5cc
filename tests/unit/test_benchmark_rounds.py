"""Measuring cases side by side, round after round (benchmarks/rounds.py and drains.Drain)."""

import pytest

from benchmarks.drains import Drain
from benchmarks.rounds import best_of, best_results


def test_cases_take_turns_round_after_round() -> None:
    calls: list[str] = []
    best_of(
        2,
        {"a": lambda: calls.append("a") or 1.0, "b": lambda: calls.append("b") or 1.0},
        higher_is_better=True,
    )
    assert calls == ["a", "b", "a", "b"]


@pytest.mark.parametrize(("higher_is_better", "expected"), [(True, 3.0), (False, 1.0)])
def test_best_of_keeps_each_case_s_best_value(higher_is_better: bool, expected: float) -> None:
    values = iter([1.0, 3.0, 2.0])
    assert best_of(3, {"a": lambda: next(values)}, higher_is_better=higher_is_better) == {
        "a": expected
    }


def test_best_results_ranks_by_the_key_and_returns_the_whole_result() -> None:
    drains = iter([Drain(100, 2.0, 3.0), Drain(100, 1.0, 1.5), Drain(100, 4.0, 0.5)])
    best = best_results(
        3, {"one": lambda: next(drains)}, key=lambda drain: drain.rate, higher_is_better=True
    )
    assert best == {"one": Drain(100, 1.0, 1.5)}


def test_a_drain_s_rate_busy_cores_and_cpu_per_event() -> None:
    drain = Drain(events=20_000, seconds=0.8, cpu_seconds=1.12)
    assert drain.rate == pytest.approx(25_000)
    assert drain.busy_cores == pytest.approx(1.4)
    assert drain.cpu_us_per_event == pytest.approx(56)


def test_the_two_worker_ratio_is_the_product_of_the_cpu_figures() -> None:
    one, two = Drain(20_000, 0.8, 1.12), Drain(20_000, 0.64, 1.2)
    cores = 2.0
    explained = (cores / one.busy_cores) * (two.busy_cores / cores)
    explained /= two.cpu_us_per_event / one.cpu_us_per_event
    assert two.rate / one.rate == pytest.approx(explained)
