"""KafkaTopicConsumer against a real Kafka-protocol broker: topics written by KafkaBackend.

Each test uses its own topic and group. ``session_timeout_ms=6000`` keeps the dev broker's first
group join short (it waits about half the session timeout).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from django_broadcaster.backends import KafkaBackend
from django_broadcaster.backends.kafka import binary_message
from django_broadcaster.consumers.decoding import decode_structured
from django_broadcaster.consumers.inbox import InboxEntry, InboxStatus
from django_broadcaster.consumers.kafka import KafkaTopicConsumer
from django_broadcaster.consumers.processing import Message, RetryPolicy
from django_broadcaster.events import CloudEvent
from django_broadcaster.exceptions import BroadcasterImproperlyConfigured
from django_broadcaster.models import OutboxEvent
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry
from tests.factories import published_event

pytestmark = [pytest.mark.kafka, pytest.mark.django_db(transaction=True)]

TYPE = "com.example.order.created"
QUICK = RetryPolicy(max_attempts=2, base_delay=timedelta(0), max_delay=timedelta(0))
OPTIONS = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}


@pytest.fixture(params=["binary", "structured"])
def send(
    request: pytest.FixtureRequest, kafka_bootstrap_servers: str, unique_name: str
) -> Iterator[Any]:
    """Return a function that produces events to the topic ``unique_name`` with the backend."""
    backend = KafkaBackend(
        "kafka", bootstrap_servers=kafka_bootstrap_servers, topic=unique_name,
        content_mode=request.param,
    )  # fmt: skip

    def send(events: list[CloudEvent]) -> None:
        assert backend.send_batch(events) == {}

    yield send
    backend.close()


def side_effect(event: CloudEvent) -> None:
    if event.data == "poison":
        raise RuntimeError("cannot handle it")
    publisher.publish_event("handled", "tests", {"event": event.id})


def handled() -> list[str]:
    rows = OutboxEvent.objects.filter(event_type="handled").values_list("data", flat=True)
    return sorted(data["event"] for data in rows)


def consumer(
    servers: str, topic: str, cls: type[KafkaTopicConsumer] = KafkaTopicConsumer, **options: Any
) -> KafkaTopicConsumer:
    registry = EventRegistry()
    registry.register(TYPE)(side_effect)
    return cls(
        servers, topic, f"{topic}-group", registry=registry, policy=QUICK, burst=True,
        consumer_options=OPTIONS, **options,
    )  # fmt: skip


def test_each_event_is_handled_once_though_sent_twice(
    send: Any, kafka_bootstrap_servers: str, unique_name: str
) -> None:
    events = [published_event(extensions={"partitionkey": f"k{n % 3}"}) for n in range(20)]
    send(events)
    send(events[:12])

    stats = consumer(kafka_bootstrap_servers, unique_name, batch_size=5).run()

    assert (stats.processed, stats.duplicates) == (20, 12)
    assert handled() == sorted(str(e.id) for e in events)
    assert consumer(kafka_bootstrap_servers, unique_name).run().processed == 0  # committed


class CrashBeforeCommit(KafkaTopicConsumer):
    """Commit every transaction, then die before the offset commit."""

    def acknowledge(self, messages: list[Message]) -> None:
        self.stop()


def test_messages_handled_but_not_committed_are_redelivered_and_skipped(
    send: Any, kafka_bootstrap_servers: str, unique_name: str
) -> None:
    events = [published_event() for _ in range(10)]
    send(events)
    crashed = consumer(kafka_bootstrap_servers, unique_name, CrashBeforeCommit).run()
    assert crashed.processed > 0

    stats = consumer(kafka_bootstrap_servers, unique_name).run()

    assert (stats.duplicates, stats.processed) == (crashed.processed, 10 - crashed.processed)
    assert handled() == sorted(str(e.id) for e in events)


def test_a_poison_event_is_a_dead_letter_and_its_offset_committed(
    send: Any, kafka_bootstrap_servers: str, unique_name: str
) -> None:
    bad, good = published_event(data="poison"), published_event()
    send([bad, good])

    stats = consumer(kafka_bootstrap_servers, unique_name).run()

    assert (stats.dead_lettered, stats.processed) == (1, 1)
    letter = InboxEntry.objects.get(status=InboxStatus.FAILED)
    assert letter.error == "RuntimeError: cannot handle it"
    assert decode_structured(letter.payload).id == bad.id
    assert consumer(kafka_bootstrap_servers, unique_name).run().dead_lettered == 0


def test_an_undecodable_message_is_a_dead_letter_keyed_by_its_offset(
    kafka_bootstrap_servers: str, unique_name: str
) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap_servers)
    producer.send(unique_name, value=b"not an event", partition=0).get(timeout=10)
    producer.close()

    assert consumer(kafka_bootstrap_servers, unique_name).run().dead_lettered == 1
    letter = InboxEntry.objects.get()
    assert (letter.source, letter.event_id) == (f"kafka:{unique_name}", "0:0")
    assert '"value": "not an event"' in letter.payload


def test_events_whose_key_is_empty_or_holds_a_nul_are_handled(
    kafka_bootstrap_servers: str, unique_name: str
) -> None:
    from kafka import KafkaProducer

    events = [published_event(), published_event()]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap_servers)
    for event, key in zip(events, [b"", b"order\x0042"], strict=True):
        message = binary_message(event)
        producer.send(unique_name, key=key, value=message.value, headers=message.headers)
    producer.flush(timeout=10)
    producer.close()

    stats = consumer(kafka_bootstrap_servers, unique_name).run()

    assert (stats.processed, stats.dead_lettered) == (2, 0)
    assert handled() == sorted(str(e.id) for e in events)


def test_options_the_consumer_sets_itself_are_refused() -> None:
    with pytest.raises(BroadcasterImproperlyConfigured, match="enable_auto_commit"):
        KafkaTopicConsumer("x:9092", "t", "g", consumer_options={"enable_auto_commit": True})
    with pytest.raises(BroadcasterImproperlyConfigured, match="unknown keys"):
        KafkaTopicConsumer("x:9092", "t", "g", consumer_options={"colour": "red"})
