"""Latency from commit to the event in Redis, at a steady rate, with the real worker.

This process publishes one event per transaction at 200 events/s and notes when each commit
returned; one worker subprocess with the default settings (``outbox_worker``, no options) delivers
them. A stream entry's id carries the Redis server's clock in milliseconds at ``XADD``, and the
server runs on this machine, so latency = entry time - commit time, to the millisecond.
"""

from __future__ import annotations

import statistics
import time

from django.db import transaction

from django_broadcaster.publishers import publisher

from . import stream
from .database import empty_outbox
from .report import Figure, Goal
from .scale import Scale
from .workers import current_worker, running
from .workload import EVENT_TYPE, SOURCE, payload

RATE_PER_S = 200
ARRIVAL_TIMEOUT_S = 60.0


def publish_steadily(seconds: float) -> dict[str, float]:
    """Publish ``RATE_PER_S`` events a second for ``seconds``; return commit times (ms) by id."""
    data, committed = payload(), {}
    next_at = time.perf_counter()
    for _ in range(int(seconds * RATE_PER_S)):
        time.sleep(max(0.0, next_at - time.perf_counter()))
        with transaction.atomic():
            row = publisher.publish_event(EVENT_TYPE, SOURCE, data)
        committed[str(row.pk)] = time.time() * 1000
        next_at += 1 / RATE_PER_S
    return committed


def measure(scale: Scale) -> list[Figure]:
    """Return the median and 99th percentile of commit-to-Redis latency."""
    empty_outbox()
    stream.reset()
    with running([current_worker(stream.redis_backends())]):
        committed = publish_steadily(scale.latency_s)
        stream.wait_for_length(len(committed), ARRIVAL_TIMEOUT_S)
    arrived = stream.arrival_ms()
    latencies = [arrived[event_id] - at for event_id, at in committed.items()]
    cuts = statistics.quantiles(latencies, n=100)
    name = f"commit to Redis at {RATE_PER_S} ev/s"
    return [
        Figure(f"{name}, p50", cuts[49], "ms", goal=Goal("<=", 20, "measured")),
        Figure(f"{name}, p99", cuts[98], "ms", goal=Goal("<=", 100, "measured")),
    ]
