"""Drill 3: the database restarts under a running worker (``pg_ctl restart -m fast``).

The drill has its own PostgreSQL cluster. The worker must log the errors, back off, reconnect
and carry on: no crash, no crash loop, a bounded number of errors, nothing lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from django.db import DatabaseError, connections

from django_broadcaster.models import OutboxEvent
from harness.process import Process

from .drill import (
    Scale,
    poll,
    publish,
    published_count,
    redis_backend,
    report,
    status_counts,
)
from .observe import Deliveries, stream_ids
from .services import PostgresCluster

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.redis]

EVENTS = 10_000
BATCH_SIZE = 50
LEASE_S = 5.0


def published_or_none(alias: str) -> int | None:
    """Return the published count, or ``None`` while the database is away."""
    try:
        return published_count(alias)
    except DatabaseError:
        connections[alias].close()
        return None


def test_worker_survives_a_database_restart(
    scale: Scale,
    own_postgres: PostgresCluster,
    drill_database: str,
    workers: Callable[..., Process],
    redis_url: str,
    unique_name: str,
    cleanup_stream: Callable[[str], str],
) -> None:
    alias = drill_database
    ids = publish(EVENTS, using=alias)
    run = workers(
        backends={"redis": redis_backend(redis_url, cleanup_stream(unique_name))},
        settings={"BATCH_SIZE": BATCH_SIZE, "LEASE_DURATION": LEASE_S},
        env={"DATABASE_URL": own_postgres.url, "TEST_DATABASE_NAME": own_postgres.database},
    )
    poll(lambda: published_count(alias) >= EVENTS // 5, 60, "a fifth published", using=alias)
    connections[alias].close()
    restart_started = time.monotonic()
    own_postgres.restart()
    restart_s = time.monotonic() - restart_started
    at_restart = published_or_none(alias) or 0
    assert at_restart < EVENTS, "the worker finished before the restart: publish more events"
    progress_s = poll(
        lambda: (published_or_none(alias) or 0) > at_restart, 60, "progress after the restart",
        using=alias,
    )  # fmt: skip
    assert run.alive, f"the worker died with the database:\n{run.tail()}"
    poll(lambda: published_or_none(alias) == EVENTS, 120, "every event published", using=alias)
    assert run.stop() == 0, run.tail()

    errors = run.lines(r"Database error")
    redis = Deliveries.of("redis", stream_ids(redis_url, unique_name), ids)
    report(
        "database restart",
        f"{EVENTS} events, restart at {at_restart} published took {restart_s:.1f} s; "
        f"worker published again {progress_s:.1f} s after it; {len(errors)} database errors logged",
    )
    report("database restart", redis.summary())

    assert status_counts(alias) == {"published": EVENTS}
    assert not OutboxEvent.objects.using(alias).exclude(retry_count=0).exists()
    assert not redis.missing and not redis.unexpected, redis.summary()
    assert redis.duplicates <= BATCH_SIZE, redis.summary()
    assert 1 <= len(errors) <= 10, "\n".join(errors)
    assert not run.lines(r"Traceback"), run.output()
