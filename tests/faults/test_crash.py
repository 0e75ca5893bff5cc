"""Drill 1: SIGKILL the worker at random moments; a final run must deliver everything.

A killed worker records nothing for the batch in hand; its claim is a lease, so the rows come
back when the lease ends and are delivered again. That is at-least-once: every event reaches
every destination, and each kill may deliver at most one batch twice.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any

import pytest

from django_broadcaster.outbox.models import RELEASED, OutboxEvent, Status
from harness.process import Process

from .drill import (
    DRILL_TIMEOUT_S,
    Scale,
    kafka_backend,
    poll,
    publish,
    published_count,
    redis_backend,
    report,
    status_counts,
)
from .observe import Deliveries, TopicReader, stream_ids

pytestmark = [
    pytest.mark.faults,
    pytest.mark.timeout(DRILL_TIMEOUT_S),
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.kafka,
    pytest.mark.django_db(transaction=True),
]

BATCH_SIZE = 100
LEASE_S = 2.0


def kill_points(rng: random.Random, events: int, kills: int) -> list[int]:
    """Return how many events should be published before each kill, spread over the run."""
    return sorted(rng.randint(events // 20, events * 17 // 20) for _ in range(kills))


def kill_when(run: Process, target: int, total: int, rng: random.Random) -> int:
    """SIGKILL ``run`` at a random moment once ``target`` events (and one batch of its own) are
    published, or all ``total`` are; return the number published then."""
    at_start = published_count()
    goal = min(max(target, at_start + 1), total)  # earlier runs may have published them all
    poll(
        lambda: published_count() >= goal or not run.alive,
        timeout=120,
        what=f"{target} events published",
        every=0.05,
    )
    assert run.alive, f"the worker died before it was killed:\n{run.tail()}"
    time.sleep(rng.uniform(0, 0.3))  # not always right after a batch was recorded
    run.kill()
    return published_count()


def test_sigkill_at_random_moments_loses_nothing(
    scale: Scale,
    workers: Callable[..., Process],
    redis_url: str,
    kafka_bootstrap_servers: str,
    unique_name: str,
    cleanup_stream: Callable[[str], str],
) -> None:
    seed = int(os.environ.get("FAULTS_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    ids = publish(scale.crash_events)
    backends: dict[str, Any] = {
        "redis": redis_backend(redis_url, cleanup_stream(unique_name)),
        "kafka": kafka_backend(kafka_bootstrap_servers, unique_name),
    }
    settings = {"BATCH_SIZE": BATCH_SIZE, "LEASE_DURATION": LEASE_S}
    started = time.monotonic()

    with TopicReader(kafka_bootstrap_servers, unique_name) as topic:
        killed_at = []
        for target in kill_points(rng, len(ids), scale.crash_kills):
            run = workers(backends=backends, settings=settings)
            killed_at.append(kill_when(run, target, len(ids), rng))
        left_for_final = len(ids) - published_count()

        final = workers(backends=backends, settings=settings)
        final_s = poll(lambda: published_count() == len(ids), timeout=300, what="every event")
        # The killed workers may have published everything already; a SIGTERM that came before
        # the final worker had started would end it by the signal's default action (-15).
        final.wait_ready()
        assert final.stop() == 0, final.tail()
        kafka_missing = topic.wait_for(ids, timeout=60)
        time.sleep(1)  # late copies of the last batches, so that duplicates are counted
        kafka = Deliveries.of("kafka", topic.ids, ids)
    redis = Deliveries.of("redis", stream_ids(redis_url, unique_name), ids)
    elapsed = time.monotonic() - started

    report("crash", f"seed {seed}; {len(ids)} events, batch {BATCH_SIZE}, lease {LEASE_S:.0f} s")
    report("crash", f"{len(killed_at)} SIGKILLs at {killed_at} events published")
    report("crash", f"final run: {left_for_final} events left, all published in {final_s:.1f} s")
    report("crash", f"{redis.summary()}; {kafka.summary()}; drill {elapsed:.0f} s")

    assert status_counts() == {Status.PUBLISHED: len(ids)}
    assert len(killed_at) == scale.crash_kills
    assert not kafka_missing and not kafka.missing and not redis.missing
    assert not kafka.unexpected and not redis.unexpected
    assert not OutboxEvent.objects.exclude(retry_count=0).exists(), "a kill spent retries"
    assert not OutboxEvent.objects.exclude(**RELEASED).exists()
    bound = BATCH_SIZE * scale.crash_kills
    assert redis.duplicates <= bound, redis.summary()
    assert kafka.duplicates <= bound, kafka.summary()
