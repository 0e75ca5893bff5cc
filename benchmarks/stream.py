"""The Redis stream the drains write to: reset it, count it, read when entries arrived."""

from __future__ import annotations

import os
import time
from typing import Final

import redis

from harness.polling import poll

STREAM: Final = "bench-events"


def client() -> redis.Redis:
    """Return a client for ``REDIS_URL``; the caller closes it."""
    return redis.Redis.from_url(os.environ["REDIS_URL"])


def redis_backends() -> dict[str, object]:
    """Return ``BROADCASTER["BACKENDS"]`` for one Redis stream backend that keeps every entry."""
    options = {"url": os.environ["REDIS_URL"], "stream_name": STREAM, "max_len": None}
    return {
        "redis": {"BACKEND": "django_broadcaster.backends.RedisStreamBackend", "OPTIONS": options}
    }


def reset() -> None:
    """Delete the stream."""
    with client() as redis_client:
        redis_client.delete(STREAM)


def length() -> int:
    """Return how many entries the stream holds."""
    with client() as redis_client:
        return int(redis_client.xlen(STREAM))


def wait_for_length(count: int, timeout_s: float) -> float:
    """Poll every 5 ms until the stream holds ``count`` entries; return ``time.perf_counter()``.

    Timing a drain by the stream rather than by the outbox keeps the polling off the database
    being measured. Raises ``TimeoutError`` after ``timeout_s`` seconds.
    """
    poll(
        lambda: length() >= count,
        timeout_s,
        f"{count} events in Redis",
        every=0.005,
        detail=lambda: f"{length()} of {count} events reached Redis",
    )
    return time.perf_counter()


def arrival_ms() -> dict[str, int]:
    """Return, for each event id in the stream, the Redis server's clock when it was added.

    A stream entry's id starts with the server's time in milliseconds at ``XADD``.
    """
    arrivals: dict[str, int] = {}
    with client() as redis_client:
        for entry_id, fields in redis_client.xrange(STREAM):
            arrivals[fields[b"event_id"].decode()] = int(entry_id.split(b"-")[0])
    return arrivals
