"""Measure cases side by side: alternate them round after round and keep each one's best."""

from __future__ import annotations

from collections.abc import Callable, Mapping


def best_of(
    rounds: int, cases: Mapping[str, Callable[[], float]], *, higher_is_better: bool
) -> dict[str, float]:
    """Run every case once per round, in turn; return each case's best value by name.

    Alternating spreads the machine's drift (other processes, caches) over every case, and the
    best value is the one least disturbed by that drift.
    """
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, case in cases.items():
            results[name].append(case())
    pick = max if higher_is_better else min
    return {name: pick(values) for name, values in results.items()}
