"""Events published in a view reach RabbitMQ, confirmed, and ``consume_rabbitmq`` handles each once.

The view publishes in its transaction; the worker delivers to RabbitMQ; two queues are bound for
the events: one that the real ``consume_rabbitmq`` command reads (as a subprocess, with the
handlers of :mod:`tests.consumer_app`), and one read here with the cloudevents SDK's AMQP binding.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from cloudevents.core.bindings.amqp import AMQPMessage, from_amqp
from cloudevents.core.formats.json import JSONFormat
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import path

from django_broadcaster.backends import RabbitMQBackend
from django_broadcaster.consumers.inbox import InboxEntry
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher
from django_broadcaster.worker import Worker
from harness.polling import poll
from harness.process import Process
from tests.amqp import Queue
from tests.consumer_app import HANDLED_TYPE, ORDER_TYPE
from tests.factories import published_event
from tests.workers import start_command

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.rabbitmq]
EVENTS = 30


def place_order(request: HttpRequest) -> HttpResponse:
    """Publish one order event in the request's transaction, as a project's view does."""
    number = int(request.POST["number"])
    with transaction.atomic():
        publisher.publish_event(
            ORDER_TYPE,
            "https://shop.example.com/orders",
            {"order": number},
            partition_key=f"customer-{number % 3}",
        )
    return HttpResponse(status=201)


urlpatterns = [path("order/", place_order)]


@pytest.fixture
def queues(rabbitmq_url: str, unique_name: str) -> Iterator[tuple[Queue, Queue]]:
    """Yield the consumer's queue and the SDK's, both bound for ``ORDER_TYPE``."""
    made = [Queue(rabbitmq_url, f"{unique_name}-{role}") for role in ("consumer", "sdk")]
    for queue in made:
        queue.bind(ORDER_TYPE)
    yield made[0], made[1]
    for queue in made:
        queue.delete()


def consume(url: str, queue: Queue, *args: str, delay_s: float = 0.0) -> Process:
    """Start ``consume_rabbitmq`` on ``queue`` with the handlers of ``tests.consumer_app``."""
    env = {
        "TEST_EXTRA_APPS": json.dumps(["tests.consumer_app"]),
        "CONSUMER_TEST_DELAY_S": str(delay_s),
    }
    common = ["--url", url, "--queue", queue.name, "--no-declare", "--batch-size", "10"]
    return start_command("consume_rabbitmq", *common, *args, env=env)


@pytest.mark.parametrize("content_mode", ["binary", "structured"])
def test_events_from_a_view_are_confirmed_and_handled_once(
    rabbitmq_url: str, queues: tuple[Queue, Queue], content_mode: str
) -> None:
    consumer_queue, sdk_queue = queues
    backend = {
        "BACKEND": "django_broadcaster.backends.RabbitMQBackend",
        "OPTIONS": {"url": rabbitmq_url, "content_mode": content_mode},
    }
    with override_settings(ROOT_URLCONF=__name__, BROADCASTER={"BACKENDS": {"rabbit": backend}}):
        client = Client()
        for number in range(EVENTS):
            assert client.post("/order/", {"number": number}).status_code == 201
        stats = Worker(burst=True).run()
    assert stats.published == EVENTS
    ids = set(OutboxEvent.objects.values_list("id", flat=True))
    sent = {str(event_id) for event_id in ids}

    decoded = [
        from_amqp(
            AMQPMessage(
                {"content-type": properties.content_type},
                dict(properties.headers or {}),
                body,
            ),
            JSONFormat(),
        )
        for properties, body in sdk_queue.get_all()
    ]
    assert {event.get_id() for event in decoded} == sent
    assert {event.get_type() for event in decoded} == {ORDER_TYPE}

    with consume(rabbitmq_url, consumer_queue, "--burst") as consumer:
        assert consumer.wait() == 0, consumer.output()
    assert "Processed 30, duplicates 0" in consumer.output()
    handled = OutboxEvent.objects.filter(event_type=HANDLED_TYPE).values_list("data", flat=True)
    assert sorted(data["event"] for data in handled) == sorted(sent)
    assert set(InboxEntry.objects.values_list("event_id", flat=True)) == sent
    assert consumer_queue.count() == 0
    assert set(OutboxEvent.objects.filter(id__in=ids).values_list("status", flat=True)) == {
        Status.PUBLISHED
    }


def test_consumer_killed_mid_way_then_restarted_handles_each_event_once(
    rabbitmq_url: str, queues: tuple[Queue, Queue]
) -> None:
    consumer_queue, _ = queues
    events = [published_event(event_type=ORDER_TYPE) for _ in range(60)]
    with RabbitMQBackend("rabbit", url=rabbitmq_url) as backend:
        assert backend.send_batch(events) == {}
        assert backend.send_batch(events) == {}  # every event twice: duplicates are skipped
    ids = sorted(str(event.id) for event in events)

    with consume(rabbitmq_url, consumer_queue, delay_s=0.02) as first:
        poll(lambda: InboxEntry.objects.count() >= 15, 60, "15 events handled")
        first.kill()
    assert InboxEntry.objects.count() < len(ids)
    with consume(rabbitmq_url, consumer_queue, "--burst") as second:
        assert second.wait() == 0, second.output()

    handled = OutboxEvent.objects.filter(event_type=HANDLED_TYPE).values_list("data", flat=True)
    assert sorted(data["event"] for data in handled) == ids, second.output()
    assert consumer_queue.count() == 0


def test_an_undecodable_message_becomes_a_dead_letter_and_is_acknowledged(
    rabbitmq_url: str, queues: tuple[Queue, Queue]
) -> None:
    consumer_queue, _ = queues
    consumer_queue.publish(ORDER_TYPE, b"not a cloudevent", content_type="text/plain")

    with consume(rabbitmq_url, consumer_queue, "--burst") as consumer:
        assert consumer.wait() == 0, consumer.output()

    [letter] = InboxEntry.objects.all()
    assert letter.source == f"rabbitmq:{consumer_queue.name}"
    assert letter.status == "failed"
    assert json.loads(letter.payload)["body"] == "not a cloudevent"
    assert consumer_queue.count() == 0
