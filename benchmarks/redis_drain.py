"""Drain PostgreSQL to a Redis stream: this package, 0.1.1, and the raw ceiling, side by side.

Each round drains the same workload four ways, in turn: the package's worker (one subprocess)
with :data:`~benchmarks.drains.WORKER_OPTIONS` and with 0.1.1's own options
(:data:`~benchmarks.drains.LEGACY_OPTIONS`), 0.1.1's worker on fewer events (it is slow; rates
are compared), and :mod:`benchmarks.ceiling`'s loop in this process.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import ceiling, legacy, stream
from .database import connect, count_rows, database_name, empty_outbox, fill_outbox
from .drains import LEGACY_OPTIONS, WORKER_OPTIONS, Drain, timed_drain
from .report import Figure, Goal
from .rounds import best_of
from .scale import Scale
from .workers import current_worker


def drain(count: int, workers: int = 1, options: Sequence[str] = WORKER_OPTIONS) -> Drain:
    """Time ``workers`` worker processes draining ``count`` events to Redis.

    Each worker runs ``outbox_worker`` with ``options``. Raises ``RuntimeError`` unless every
    event ends published and in the stream.
    """
    empty_outbox()
    stream.reset()
    processes = [current_worker(stream.redis_backends(), *options) for _ in range(workers)]
    with connect(database_name()) as poll:
        timed = timed_drain(processes, lambda: fill_outbox(count), poll, count)
        published = count_rows(poll, "published")
    if published != count or stream.length() != count:
        raise RuntimeError(f"{published} of {count} events published, {stream.length()} in Redis")
    return timed


def drain_rate(count: int, workers: int = 1, options: Sequence[str] = WORKER_OPTIONS) -> float:
    """Return events/s for ``workers`` worker processes draining ``count`` events to Redis."""
    return drain(count, workers, options).rate


def ceiling_rate(count: int) -> float:
    """Return events/s for the raw psycopg + redis-py loop draining ``count`` events."""
    empty_outbox()
    stream.reset()
    fill_outbox(count)
    with connect(database_name()) as connection, stream.client() as redis_client:
        seconds = ceiling.drain(connection, ceiling.redis_sender(redis_client, stream.STREAM))
    if stream.length() != count:
        raise RuntimeError(f"the ceiling loop added {stream.length()} of {count} events")
    return count / seconds


def measure(scale: Scale) -> list[Figure]:
    """Return the drain rate, and its ratios to 0.1.1 and to the raw ceiling."""
    legacy.prepare()
    rates = best_of(
        scale.rounds,
        {
            "current": lambda: drain_rate(scale.drain_events),
            "batches of 100": lambda: drain_rate(scale.drain_events, options=LEGACY_OPTIONS),
            "0.1.1": lambda: legacy.drain_rate(scale.legacy_events),
            "ceiling": lambda: ceiling_rate(scale.drain_events),
        },
        higher_is_better=True,
    )
    legacy_name = f"0.1.1 on {scale.legacy_events:,} events"
    return [
        Figure(
            "Redis drain, 1 worker", rates["current"], "ev/s", goal=Goal(">=", 10_000, "measured")
        ),
        Figure(
            "Redis drain vs 0.1.1",
            rates["current"],
            "ev/s",
            rates["0.1.1"],
            legacy_name,
            Goal(">=", 30),
        ),
        Figure(
            "Redis drain, batches of 100, vs 0.1.1",
            rates["batches of 100"],
            "ev/s",
            rates["0.1.1"],
            legacy_name,
        ),
        Figure(
            "Redis drain vs raw ceiling", rates["current"], "ev/s", rates["ceiling"], "raw loop"
        ),
    ]
