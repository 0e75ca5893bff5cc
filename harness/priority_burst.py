"""The priority drill's burst: high-priority events committed while a worker drains a backlog
into a Redis stream, and what the stream then shows of them.

Shared by ``tests/integration/test_priority_drill.py`` (which asserts the deterministic part: how
many backlog events can still go before the burst) and ``benchmarks/priority_burst.py`` (which
reports the times). A stream entry's id starts with the Redis server's clock in milliseconds at
``XADD``; the server runs on this machine, so commit-to-delivery = entry time - commit time.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from django_broadcaster.events import CloudEvent
from django_broadcaster.publishers import publisher

from .polling import poll

#: The burst's events: one transaction of this many, each of this priority.
BURST_EVENTS = 100
BURST_PRIORITY = 50


@dataclass(frozen=True)
class Burst:
    """What became of a burst: each event's commit-to-``XADD`` time, and the backlog events the
    stream got after the commit and before the burst's last event."""

    delivery_ms: list[int]
    backlog_after_commit: int

    @property
    def median_ms(self) -> float:
        """Return the median commit-to-delivery time."""
        return statistics.median(self.delivery_ms)

    @property
    def max_ms(self) -> int:
        """Return the longest commit-to-delivery time."""
        return max(self.delivery_ms)

    def summary(self) -> str:
        """Return one line for a log or a test's output."""
        return (
            f"{len(self.delivery_ms)} high-priority events: commit to Redis median "
            f"{self.median_ms:.0f} ms, max {self.max_ms} ms; {self.backlog_after_commit} backlog "
            "events went out after the commit and before the last of them"
        )


def publish_burst(redis_client: Any, stream: str, timeout_s: float) -> Burst:
    """Commit :data:`BURST_EVENTS` events of :data:`BURST_PRIORITY` in one transaction, wait
    until each is in ``stream`` (``TimeoutError`` after ``timeout_s``) and return the outcome."""
    events = [CloudEvent("drill.urgent", "/drill", {"n": n}) for n in range(BURST_EVENTS)]
    with transaction.atomic():
        rows = publisher.publish_events(events, priority=BURST_PRIORITY)
    committed_ms = time.time() * 1000
    last = redis_client.xrevrange(stream, count=1)
    since = b"(" + last[0][0] if last else b"-"  # the entries added after the commit
    burst = {str(row.pk) for row in rows}
    poll(
        lambda: burst <= {_event_id(entry) for entry in redis_client.xrange(stream, min=since)},
        timeout_s,
        "every high-priority event in Redis",
    )
    return _outcome(redis_client.xrange(stream, min=since), burst, committed_ms)


def _event_id(entry: tuple[bytes, dict[bytes, bytes]]) -> str:
    return entry[1][b"event_id"].decode()


def _outcome(entries: list[Any], burst: set[str], committed_ms: float) -> Burst:
    delivery_ms, backlog = [], 0
    for entry_id, fields in entries:
        if len(delivery_ms) == len(burst):
            break
        if fields[b"event_id"].decode() in burst:
            delivery_ms.append(int(entry_id.split(b"-")[0]) - round(committed_ms))
        else:
            backlog += 1
    return Burst(delivery_ms, backlog)
