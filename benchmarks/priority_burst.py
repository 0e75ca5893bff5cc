"""A burst of high-priority events behind a backlog: commit to Redis while the worker drains.

The outbox is filled with a backlog of due events at the default priority (50,000; 2,000 in a
smoke run), and one worker subprocess with the default settings drains it into Redis. Once it is
under way, this process commits a burst of 100 events of priority 50 in one transaction, a few
times in a row, and measures each event's time from the commit to its ``XADD``
(:mod:`harness.priority_burst`). The backlog's own rate is that of the Redis drain.
"""

from __future__ import annotations

import statistics
from typing import Any

from harness.polling import poll
from harness.priority_burst import publish_burst

from . import stream
from .database import empty_outbox, fill_outbox
from .report import Figure, Goal
from .scale import Scale
from .workers import current_worker, running

#: How long one burst may take to reach Redis before the measurement fails.
BURST_TIMEOUT_S = 60.0
#: Entries the drain must have written before a burst: the worker is past its start.
UNDER_WAY = 500


def measure(scale: Scale) -> list[Figure]:
    """Return the median and the longest commit-to-Redis time of the bursts' events."""
    empty_outbox()
    stream.reset()
    fill_outbox(scale.priority_backlog)
    medians, longest = [], []
    with stream.client() as redis, running([current_worker(stream.redis_backends())]):
        for _ in range(scale.rounds):
            _wait_for_more_entries(redis, UNDER_WAY)
            burst = publish_burst(redis, stream.STREAM, BURST_TIMEOUT_S)
            medians.append(burst.median_ms)
            longest.append(burst.max_ms)
    name = f"high-priority burst of 100 behind {scale.priority_backlog:,}: commit to Redis"
    return [
        Figure(
            f"{name}, median", statistics.median(medians), "ms", goal=Goal("<=", 1000, "measured")
        ),
        Figure(f"{name}, max", max(longest), "ms", goal=Goal("<=", 1000, "measured")),
    ]


def _wait_for_more_entries(redis: Any, count: int) -> None:
    """Wait until the drain has written ``count`` more entries to the stream."""
    wanted = int(redis.xlen(stream.STREAM)) + count
    poll(lambda: redis.xlen(stream.STREAM) >= wanted, 60, f"{count} more entries in Redis")
