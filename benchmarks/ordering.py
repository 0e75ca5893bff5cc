"""What per-key ordering costs: drain keyless events, then keyed ones, side by side.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python benchmarks/ordering.py [N] [KEYS]

Creates a throwaway test database (``test_<name>``), publishes N events of about 1 KB without a
partition key and drains them with one in-process worker, then the same with the events spread
over KEYS partition keys; each case runs twice, interleaved, and the best run of each counts.
Delivers to Redis when REDIS_URL is set, else to the in-memory backend. Prints events per second
and the keyed/keyless ratio. Absolute numbers drift on shared machines; the ratio is the figure.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from django_broadcaster.backends import BaseBackend, LocMemBackend  # noqa: E402
from django_broadcaster.conf import get_settings  # noqa: E402
from django_broadcaster.events import CloudEvent  # noqa: E402
from django_broadcaster.models import OutboxEvent  # noqa: E402
from django_broadcaster.publishers import publisher  # noqa: E402
from django_broadcaster.registry import EventRegistry  # noqa: E402
from django_broadcaster.worker import Worker  # noqa: E402

PAYLOAD = {"blob": "x" * 900}


def backend() -> BaseBackend:
    """Return the destination: a Redis stream when REDIS_URL is set, else memory."""
    if os.environ.get("REDIS_URL"):
        from django_broadcaster.backends import RedisStreamBackend

        return RedisStreamBackend("redis", url=os.environ["REDIS_URL"], stream_name="bench-order")
    return LocMemBackend("memory")


def drain(count: int, keys: int) -> float:
    """Publish ``count`` events (over ``keys`` keys, 0 for none); return drained events/s."""
    OutboxEvent.objects.all().delete()
    events = [
        CloudEvent(
            "bench",
            "benchmarks",
            PAYLOAD,
            extensions={"partitionkey": f"k{n % keys}"} if keys else {},
        )
        for n in range(count)
    ]
    for start in range(0, count, 5000):
        publisher.publish_events(events[start : start + 5000])
    config = replace(get_settings(), batch_size=500)
    worker = Worker(
        config=config, backends={"dest": backend()}, registry=EventRegistry(), burst=True
    )
    started = time.perf_counter()
    stats = worker.run()
    elapsed = time.perf_counter() - started
    assert stats.published == count, stats
    return count / elapsed


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    keys = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000
    old_name = connection.creation.create_test_db(verbosity=0)
    try:
        keyless = max(drain(count, 0), drain(count, 0) if count >= 5000 else 0)
        keyed = max(drain(count, keys), drain(count, keys) if count >= 5000 else 0)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    print(f"database {connection.vendor}, {count} events, destination {backend().alias}")
    print(f"{'case':<28}{'events/s':>12}")
    print(f"{'no partition key':<28}{keyless:>12,.0f}")
    print(f"{f'{keys} partition keys':<28}{keyed:>12,.0f}")
    print(f"{'ratio keyed / keyless':<28}{keyed / keyless:>12.2f}")


if __name__ == "__main__":
    main()
