"""Publish, run the worker, and read the events back from the real brokers with the SDK."""

from contextlib import ExitStack
from typing import Any

import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_kafka
from cloudevents.core.formats.json import JSONFormat
from django.test import override_settings
from kafka import KafkaConsumer

from django_broadcaster.events import CloudEvent
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry
from django_broadcaster.worker import Worker
from harness.polling import poll
from tests.workers import start_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


def read_stream(redis_client: Any, stream: str) -> list[Any]:
    """Return every event in ``stream``, decoded from its ``cloud_event`` field by the SDK."""
    entries = redis_client.xrange(stream)
    return [JSONFormat().read(None, fields[b"cloud_event"]) for _, fields in entries]


def read_topic(bootstrap_servers: str, topic: str, count: int) -> list[Any]:
    """Consume ``count`` messages of ``topic`` from the start and decode each with the SDK."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=20_000,
        session_timeout_ms=6_000,
        group_id=f"{topic}-reader",
    )
    events = []
    try:
        for record in consumer:
            message = KafkaMessage(
                headers={k: v for k, v in record.headers}, key=record.key, value=record.value
            )
            events.append(from_kafka(message, JSONFormat()))
            if len(events) == count:
                break
    finally:
        consumer.close()
    return events


@pytest.mark.kafka
def test_events_reach_redis_kafka_and_handlers(
    redis_url: str, redis_client: Any, kafka_bootstrap_servers: str, unique_name: str
) -> None:
    backends = {
        "redis": {
            "BACKEND": "django_broadcaster.backends.RedisStreamBackend",
            "OPTIONS": {"url": redis_url, "stream_name": unique_name},
        },
        "kafka": {
            "BACKEND": "django_broadcaster.backends.KafkaBackend",
            "OPTIONS": {"bootstrap_servers": kafka_bootstrap_servers, "topic": unique_name},
        },
    }
    registry = EventRegistry()
    handled: list[CloudEvent] = []
    registry.register("order.created")(handled.append)
    with override_settings(BROADCASTER={"BACKENDS": backends}):
        rows = [
            publisher.publish_event(
                "order.created",
                "https://shop.example.com/orders",
                {"order": n, "items": ["a", "b"]},
                subject=f"order-{n}",
                partition_key=f"customer-{n % 3}",
            )
            for n in range(40)
        ]
        stats = Worker(registry=registry, burst=True).run()

    assert stats.published == 40
    expected = {str(row.id): row for row in rows}
    for decoded in (
        read_stream(redis_client, unique_name),
        read_topic(kafka_bootstrap_servers, unique_name, 40),
    ):
        assert sorted(e.get_id() for e in decoded) == sorted(expected)
        for event in decoded:
            row = expected[event.get_id()]
            assert event.get_type() == "order.created"
            assert event.get_source() == "https://shop.example.com/orders"
            assert event.get_subject() == row.subject
            assert event.get_data() == row.data
            assert event.get_time() == row.time
            assert event.get_extension("partitionkey") == row.extensions["partitionkey"]
    assert sorted(e.id for e in handled) == sorted(expected)
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {Status.PUBLISHED}


@pytest.mark.postgres
@pytest.mark.slow
def test_two_workers_share_5000_events_without_delivering_any_twice(
    redis_url: str, redis_client: Any, unique_name: str
) -> None:
    backends = {
        "redis": {
            "BACKEND": "django_broadcaster.backends.RedisStreamBackend",
            "OPTIONS": {"url": redis_url, "stream_name": unique_name, "max_len": None},
        }
    }
    with ExitStack() as running:
        workers = [
            running.enter_context(start_worker("--batch-size", "100", backends=backends))
            for _ in range(2)
        ]
        # Both wait before anything is due: a worker started late on a busy machine could find
        # the burst drained, and the test would prove nothing about two workers.
        for worker in workers:
            worker.wait_ready()
        publisher.publish_events([CloudEvent("t", "s", {"n": n}) for n in range(5000)])
        poll(lambda: redis_client.xlen(unique_name) >= 5000, 120, "5000 events in the stream")
        codes = [worker.stop() for worker in workers]
    outputs = [worker.output() for worker in workers]

    assert codes == [0, 0], outputs
    ids = [event.get_id() for event in read_stream(redis_client, unique_name)]
    assert len(ids) == 5000
    assert len(set(ids)) == 5000
    assert OutboxEvent.objects.filter(status=Status.PUBLISHED).count() == 5000
    shares = [int(o.split("Published ")[1].split(",")[0]) for o in outputs]
    assert sum(shares) == 5000
    assert all(share > 0 for share in shares), shares  # both workers took part
