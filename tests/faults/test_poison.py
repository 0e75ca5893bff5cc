"""Drill 4: poison events end ``failed`` after their retries, without holding up the others.

Two kinds of poison, published ahead of 2,000 good events: events whose local handler always
raises (``tests/faults/handlers.py``, loaded into the worker with ``TEST_EXTRA_APPS``), and events
larger than the Kafka producer's ``max_request_size`` (set low), which Kafka refuses for good.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from django_broadcaster.events import CloudEvent
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher
from harness.process import Process

from .drill import kafka_backend, poll, publish, redis_backend, report
from .handlers import POISON_TYPE
from .observe import Deliveries, TopicReader, stream_ids

pytestmark = [
    pytest.mark.faults,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.kafka,
    pytest.mark.django_db(transaction=True),
]

GOOD = 2000
POISON = 5
MAX_RETRIES = 4
MAX_REQUEST_SIZE = 4096
SETTINGS = {"BATCH_SIZE": 100, "RETRY_BASE_DELAY": 1, "RETRY_MAX_DELAY": 2}


def test_poison_events_fail_alone(
    workers: Callable[..., Process],
    redis_url: str,
    kafka_bootstrap_servers: str,
    unique_name: str,
    cleanup_stream: Callable[[str], str],
) -> None:
    handler_poison = publisher.publish_events(
        [CloudEvent(POISON_TYPE, "https://drills.example.com", {"n": n}) for n in range(POISON)],
        max_retries=MAX_RETRIES,
    )
    oversize = publisher.publish_events(
        [CloudEvent("drill.big", "https://drills.example.com", {"blob": "x" * 8000})] * POISON,
        max_retries=MAX_RETRIES,
    )
    good = publish(GOOD)
    poison_ids = {str(row.pk) for row in handler_poison + oversize}
    backends = {
        "redis": redis_backend(redis_url, cleanup_stream(unique_name)),
        "kafka": kafka_backend(
            kafka_bootstrap_servers,
            unique_name,
            producer_options={"max_request_size": MAX_REQUEST_SIZE},
        ),
    }
    started = time.monotonic()
    with TopicReader(kafka_bootstrap_servers, unique_name) as kafka:
        run = workers(
            backends=backends, settings=SETTINGS, env={"TEST_EXTRA_APPS": '["tests.faults"]'}
        )
        good_done_s = poll(
            lambda: (
                OutboxEvent.objects.filter(pk__in=good, status=Status.PUBLISHED).count() == GOOD
            ),
            60,
            "every good event published",
        )
        poison_done_s = poll(
            lambda: (
                OutboxEvent.objects.filter(pk__in=poison_ids, status=Status.FAILED).count()
                == len(poison_ids)
            ),
            120,
            "every poison event failed",
        )
        assert run.stop() == 0, run.tail()
        kafka.wait_for(good, 30)
        kafka_ids = kafka.ids
    redis_ids = stream_ids(redis_url, unique_name)
    elapsed = time.monotonic() - started

    rows = {str(row.pk): row for row in OutboxEvent.objects.all()}
    redis = Deliveries.of("redis", redis_ids, rows)
    report(
        "poison",
        f"{GOOD} good events all published after {good_done_s:.1f} s; {len(poison_ids)} poison "
        f"events (ahead of them) all failed {poison_done_s:.1f} s later ({MAX_RETRIES} retries, "
        f"1-2 s apart); drill {elapsed:.0f} s",
    )
    report("poison", f"{redis.summary()}; kafka got {len(set(kafka_ids))} distinct events")

    # Not held up: each good event went out on its first attempt, and exactly once, although
    # the poison events were at the head of the outbox and shared batches with them.
    assert all(rows[i].status == Status.PUBLISHED and rows[i].retry_count == 0 for i in good)
    assert not redis.missing and redis.duplicates == 0, redis.summary()
    assert set(good) <= set(kafka_ids)
    for row in handler_poison:
        stored = rows[str(row.pk)]
        assert (stored.status, stored.retry_count) == (Status.FAILED, MAX_RETRIES + 1)
        assert "handler bug" in stored.last_error
        # Both brokers took it once; only the handler kept failing, and only it was retried.
        assert set(stored.delivered) == {"redis", "kafka"}
        assert str(row.pk) in kafka_ids
    for row in oversize:
        stored = rows[str(row.pk)]
        assert (stored.status, stored.retry_count) == (Status.FAILED, MAX_RETRIES + 1)
        assert "MessageSizeTooLarge" in stored.last_error
        assert stored.delivered == ["redis"]
        assert str(row.pk) not in kafka_ids
