"""A routed drain beside an unrouted one: three event types to three Redis streams, or to one.

Each round drains the same workload of three event types twice, in turn, with one worker
subprocess: unrouted (no ``ROUTES``; every row bound for every backend, one fixed stream) and
routed (one rule per type, which the publisher records on each row, and a ``stream_name``
template, ``bench-events.{type}``, so each type lands in a stream of its own). The ratio is
what routing costs the worker: the rows' named destinations and a stream name per event.
"""

from __future__ import annotations

import os
from typing import Any, Final

from django.test import override_settings

from . import stream
from .database import connect, count_rows, database_name, empty_outbox, fill_outbox
from .drains import WORKER_OPTIONS, timed_drain
from .report import Figure, Goal
from .rounds import best_of
from .scale import Scale
from .workers import current_worker

TYPES: Final = ("bench.order.created", "bench.user.created", "bench.invoice.sent")
ROUTES: Final = [{"TYPES": event_type, "BACKENDS": ["redis"]} for event_type in TYPES]
TEMPLATE: Final = stream.STREAM + ".{type}"


def backends(stream_name: str) -> dict[str, Any]:
    """Return ``BROADCASTER["BACKENDS"]``: one Redis backend writing ``stream_name``."""
    options = {"url": os.environ["REDIS_URL"], "stream_name": stream_name, "max_len": None}
    return {
        "redis": {"BACKEND": "django_broadcaster.backends.RedisStreamBackend", "OPTIONS": options}
    }


def streams() -> list[str]:
    """Return every stream a drain may write: the fixed one and one per type."""
    return [stream.STREAM, *(TEMPLATE.format(type=event_type) for event_type in TYPES)]


def drain_rate(count: int, routed: bool) -> float:
    """Return events/s for one worker draining ``count`` events of :data:`TYPES` to Redis.

    Raises ``RuntimeError`` unless every event ends published, each in its stream.
    """
    empty_outbox()
    with stream.client() as redis_client:
        redis_client.delete(*streams())
    configured = backends(TEMPLATE if routed else stream.STREAM)
    settings = {"BACKENDS": configured, "ROUTES": ROUTES if routed else []}
    with connect(database_name()) as poll, override_settings(BROADCASTER=settings):
        worker = current_worker(configured, *WORKER_OPTIONS)
        timed = timed_drain([worker], lambda: fill_outbox(count, event_types=TYPES), poll, count)
        published = count_rows(poll, "published")
    with stream.client() as redis_client:
        lengths = [int(redis_client.xlen(name)) for name in streams()]
    expected = [0, *([count // 3] * 3)] if routed else [count, 0, 0, 0]
    if published != count or sorted(lengths) != sorted(expected):
        raise RuntimeError(f"{published} of {count} events published; streams {lengths}")
    return timed.rate


def measure(scale: Scale) -> list[Figure]:
    """Return the routed drain's rate against the unrouted one's, in the same rounds."""
    count = scale.drain_events - scale.drain_events % 3
    rates = best_of(
        scale.rounds,
        {
            "unrouted": lambda: drain_rate(count, routed=False),
            "routed": lambda: drain_rate(count, routed=True),
        },
        higher_is_better=True,
    )
    return [
        Figure(
            "Redis drain, 3 types routed to 3 streams, vs unrouted",
            rates["routed"],
            "ev/s",
            rates["unrouted"],
            "unrouted, 1 stream",
            Goal(">=", 0.9),
        ),
    ]
