"""Measure cases side by side: alternate them round after round and keep each one's best."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

T = TypeVar("T")


def best_of(
    rounds: int, cases: Mapping[str, Callable[[], float]], *, higher_is_better: bool
) -> dict[str, float]:
    """Run every case once per round, in turn; return each case's best value by name.

    Alternating spreads the machine's drift (other processes, caches) over every case, and the
    best value is the one least disturbed by that drift.
    """
    return best_results(rounds, cases, key=float, higher_is_better=higher_is_better)


def best_results(
    rounds: int,
    cases: Mapping[str, Callable[[], T]],
    *,
    key: Callable[[T], float],
    higher_is_better: bool,
) -> dict[str, T]:
    """Run every case once per round, in turn; return each case's best result by name.

    As :func:`best_of`, for cases that return more than one number: ``key`` gives the number
    that ranks a result, and the best result is returned whole.
    """
    results: dict[str, list[T]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, case in cases.items():
            results[name].append(case())
    pick = max if higher_is_better else min
    return {name: pick(values, key=key) for name, values in results.items()}
