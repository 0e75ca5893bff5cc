"""Drill 7: several workers on one PostgreSQL outbox, no faults: every event exactly once.

Claims are ``FOR UPDATE SKIP LOCKED`` leases, so concurrent workers pass each other by; with
no crash and no timeout, nothing may be delivered twice. The Redis stream is read back whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from django_broadcaster.models import Status
from harness.process import Process

from .drill import DRILL_TIMEOUT_S, Scale, publish, redis_backend, report, status_counts
from .observe import Deliveries, stream_ids

pytestmark = [
    pytest.mark.faults,
    pytest.mark.timeout(DRILL_TIMEOUT_S),
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


def test_concurrent_workers_deliver_each_event_exactly_once(
    scale: Scale,
    workers: Callable[..., Process],
    redis_url: str,
    unique_name: str,
    cleanup_stream: Callable[[str], str],
) -> None:
    started = time.monotonic()
    ids = publish(scale.concurrency_events)
    publish_s = time.monotonic() - started
    backends = {"redis": redis_backend(redis_url, cleanup_stream(unique_name))}
    started = time.monotonic()
    runs = [
        workers("--burst", backends=backends, settings={"BATCH_SIZE": 100})
        for _ in range(scale.concurrency_workers)
    ]
    codes = [run.wait(timeout=600) for run in runs]
    deliver_s = time.monotonic() - started
    shares = [int(run.lines(r"^Published \d+")[-1].split()[1].rstrip(",")) for run in runs]

    redis = Deliveries.of("redis", stream_ids(redis_url, unique_name), ids)
    report(
        "concurrency",
        f"{len(ids)} events bulk-published in {publish_s:.1f} s; {len(runs)} burst workers "
        f"delivered them in {deliver_s:.1f} s ({len(ids) / deliver_s:.0f}/s), shares {shares}",
    )
    report("concurrency", redis.summary())

    assert codes == [0] * len(runs), [run.tail() for run in runs]
    assert status_counts() == {Status.PUBLISHED: len(ids)}
    assert not redis.missing and not redis.unexpected, redis.summary()
    assert redis.duplicates == 0, redis.summary()
    assert sum(shares) == len(ids)
    assert all(share > 0 for share in shares), shares
