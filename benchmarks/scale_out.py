"""Scale out: two worker processes draining PostgreSQL to Redis, against one."""

from __future__ import annotations

from .redis_drain import drain_rate
from .report import Figure, Goal
from .rounds import best_of
from .scale import Scale


def measure(scale: Scale) -> list[Figure]:
    """Return the two-worker drain rate and its ratio to the one-worker rate."""
    count = scale.drain_events
    rates = best_of(
        scale.rounds,
        {"one": lambda: drain_rate(count, workers=1), "two": lambda: drain_rate(count, workers=2)},
        higher_is_better=True,
    )
    return [
        Figure(
            "Redis drain, 2 workers",
            rates["two"],
            "ev/s",
            rates["one"],
            "1 worker",
            Goal(">=", 1.4),
        )
    ]
