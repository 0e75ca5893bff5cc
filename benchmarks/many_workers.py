"""Scale out past the cores: 4 and 8 worker processes draining PostgreSQL to Redis, against one.

On two cores more workers cannot add throughput; what this measures is that they do not take it
away (no contention collapse on the claim's row locks) and that every event reaches Redis
exactly once. Without crashes the documented bound on duplicates is none, so any duplicate fails
the measurement.
"""

from __future__ import annotations

from . import stream
from .drains import Drain
from .redis_drain import drain
from .report import Figure, Goal
from .rounds import best_results
from .scale import Scale

CROWDS = (4, 8)
#: Each of the most workers gets at least two batches of 500, even in a smoke run: with fewer
#: events the first worker's claim takes them all and the others only add start-up noise.
LEAST_EVENTS = max(CROWDS) * 500 * 2


def drain_exactly_once(count: int, workers: int) -> Drain:
    """Time ``workers`` workers draining ``count`` events; raise unless each arrived once.

    Raises ``RuntimeError`` when the stream holds a duplicate or misses an event.
    """
    timed = drain(count, workers)
    distinct = len(stream.arrival_ms())
    if distinct != count or stream.length() != count:
        raise RuntimeError(
            f"{workers} workers: {stream.length()} stream entries, {distinct} distinct events, "
            f"{count} published: not exactly once"
        )
    return timed


def measure(scale: Scale) -> list[Figure]:
    """Return the 4- and 8-worker drain rates against one worker's, each event once."""
    count = max(scale.drain_events, LEAST_EVENTS)
    cases = {workers: (lambda w=workers: drain_exactly_once(count, w)) for workers in (1, *CROWDS)}
    drains = best_results(
        scale.rounds,
        {str(workers): case for workers, case in cases.items()},
        key=_rate,
        higher_is_better=True,
    )
    one = drains["1"].rate
    return [
        Figure(
            f"Redis drain, {workers} workers, each event once",
            drains[str(workers)].rate,
            "ev/s",
            one,
            "1 worker",
            Goal(">=", 1.0),
        )
        for workers in CROWDS
    ]


def _rate(result: Drain) -> float:
    return result.rate
