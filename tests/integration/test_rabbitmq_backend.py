"""The RabbitMQ backend against a real broker: confirms, returns, outages, the AMQP binding.

Each test publishes to ``amq.topic`` with event types under its own ``unique_name``, which its
own queue is bound for (the ``rabbitmq_queue`` fixture), and decodes what arrived with the
cloudevents SDK's AMQP binding.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from cloudevents.core.bindings.amqp import AMQPMessage, from_amqp, from_binary, from_structured
from cloudevents.core.formats.json import JSONFormat

from django_broadcaster.backends import RabbitMQBackend
from django_broadcaster.exceptions import BackendUnavailable, EventRejected
from tests.amqp import Queue
from tests.factories import published_event

pytestmark = pytest.mark.rabbitmq


@pytest.fixture(params=["binary", "structured"])
def content_mode(request: pytest.FixtureRequest) -> str:
    mode: str = request.param
    return mode


@pytest.fixture
def backend(rabbitmq_url: str, content_mode: str) -> Iterator[RabbitMQBackend]:
    with RabbitMQBackend("rabbit", url=rabbitmq_url, content_mode=content_mode) as opened:
        assert isinstance(opened, RabbitMQBackend)
        yield opened


def sdk_message(properties: Any, body: bytes) -> AMQPMessage:
    """Return what was read as the SDK's AMQP 1.0 message: headers are application properties."""
    content_type = {"content-type": properties.content_type} if properties.content_type else {}
    return AMQPMessage(
        properties=content_type,
        application_properties=dict(properties.headers or {}),
        application_data=body,
    )


def events_for(queue: Queue, count: int, **overrides: Any) -> list[Any]:
    return [
        published_event(event_type=f"{queue.name}.order.created", **overrides) for _ in range(count)
    ]


def test_every_event_is_confirmed_persistent_and_decodable_by_the_sdk(
    backend: RabbitMQBackend, rabbitmq_queue: Queue, content_mode: str
) -> None:
    events = events_for(rabbitmq_queue, 3, extensions={"partitionkey": "customer-7", "vip": True})

    assert backend.send_batch(events) == {}

    received = rabbitmq_queue.get_all()
    assert len(received) == 3
    strict = from_binary if content_mode == "binary" else from_structured
    for event, (properties, body) in zip(events, received, strict=True):
        assert properties.delivery_mode == 2
        assert properties.message_id == event.id
        assert properties.headers["cloudEvents_partitionkey"] == "customer-7"
        for decoded in (
            strict(sdk_message(properties, body), JSONFormat()),
            from_amqp(sdk_message(properties, body), JSONFormat()),
        ):
            assert decoded.get_id() == event.id
            assert decoded.get_type() == event.event_type
            assert decoded.get_source() == event.source
            assert decoded.get_time() == event.time
            assert decoded.get_data() == event.data
            assert decoded.get_extension("partitionkey") == "customer-7"
            assert str(decoded.get_extension("vip")).lower() == "true"


@pytest.mark.parametrize("content_mode", ["binary"], indirect=True)
def test_binary_mode_uses_the_underscore_prefix_and_the_content_type_property(
    backend: RabbitMQBackend, rabbitmq_queue: Queue
) -> None:
    [event] = events_for(rabbitmq_queue, 1, data="plain text", datacontenttype="text/plain")

    backend.send(event)

    [(properties, body)] = rabbitmq_queue.get_all()
    assert properties.content_type == "text/plain"
    assert body == b"plain text"
    assert set(properties.headers) == {
        "cloudEvents_specversion",
        "cloudEvents_id",
        "cloudEvents_source",
        "cloudEvents_type",
        "cloudEvents_time",
    }


@pytest.mark.parametrize("content_mode", ["structured"], indirect=True)
def test_structured_mode_sends_cloudevents_json(
    backend: RabbitMQBackend, rabbitmq_queue: Queue
) -> None:
    [event] = events_for(rabbitmq_queue, 1)

    backend.send(event)

    [(properties, body)] = rabbitmq_queue.get_all()
    assert properties.content_type == "application/cloudevents+json; charset=UTF-8"
    assert from_structured(sdk_message(properties, body), JSONFormat()).get_id() == event.id


def test_an_unroutable_event_is_rejected_alone(
    backend: RabbitMQBackend, rabbitmq_queue: Queue
) -> None:
    [routed] = events_for(rabbitmq_queue, 1)
    lost = published_event(event_type=f"nobody-binds.{rabbitmq_queue.name}")

    rejected = backend.send_batch([routed, lost])

    assert list(rejected) == [lost.id]
    assert isinstance(rejected[lost.id], EventRejected)
    assert "312 NO_ROUTE" in str(rejected[lost.id])
    assert rabbitmq_queue.count() == 1


def test_without_mandatory_an_unroutable_event_counts_as_delivered(
    rabbitmq_url: str, rabbitmq_queue: Queue
) -> None:
    lost = published_event(event_type=f"nobody-binds.{rabbitmq_queue.name}")
    with RabbitMQBackend("rabbit", url=rabbitmq_url, mandatory=False) as backend:
        assert backend.send_batch([lost]) == {}


def test_a_fixed_routing_key_replaces_the_event_type(
    rabbitmq_url: str, rabbitmq_queue: Queue
) -> None:
    event = published_event(event_type="com.example.anything")
    key = f"{rabbitmq_queue.name}.all"
    with RabbitMQBackend("rabbit", url=rabbitmq_url, routing_key=key) as backend:
        assert backend.send_batch([event]) == {}
    assert rabbitmq_queue.count() == 1


def test_a_routing_key_over_255_bytes_rejects_that_event(
    backend: RabbitMQBackend, rabbitmq_queue: Queue
) -> None:
    [good] = events_for(rabbitmq_queue, 1)
    long = published_event(event_type=f"{rabbitmq_queue.name}." + "x" * 300)

    rejected = backend.send_batch([good, long])

    assert list(rejected) == [long.id]
    assert "255 bytes" in str(rejected[long.id])
    assert rabbitmq_queue.count() == 1


def test_a_missing_exchange_makes_the_backend_unavailable_every_time(
    rabbitmq_url: str, rabbitmq_queue: Queue
) -> None:
    [event] = events_for(rabbitmq_queue, 1)
    with RabbitMQBackend("rabbit", url=rabbitmq_url, exchange="no-such-exchange") as backend:
        with pytest.raises(BackendUnavailable, match="NOT_FOUND - no exchange"):
            backend.send_batch([event])
        with pytest.raises(BackendUnavailable, match="NOT_FOUND - no exchange"):
            backend.send_batch([event])  # a new channel, refused again


def test_a_refused_connection_is_unavailable_and_shows_no_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    url = f"amqp://guest:hunter2-s3cret@127.0.0.1:{port}/"
    backend = RabbitMQBackend("rabbit", url=url, send_timeout=3)

    with caplog.at_level(logging.DEBUG), pytest.raises(BackendUnavailable) as info:
        backend.send_batch([published_event()])

    assert "Connection refused" in str(info.value)
    for text in (str(info.value), repr(backend), caplog.text):
        assert "hunter2" not in text
    backend.close()


def test_wrong_credentials_are_unavailable_not_a_rejection(rabbitmq_url: str) -> None:
    url = rabbitmq_url.replace("guest:guest@", "guest:not-the-password@")
    backend = RabbitMQBackend("rabbit", url=url)
    with backend, pytest.raises(BackendUnavailable, match="ACCESS_REFUSED") as info:
        backend.send_batch([published_event()])
    assert "not-the-password" not in str(info.value)


def test_the_connection_is_kept_between_batches_and_replaced_once_closed(
    backend: RabbitMQBackend, rabbitmq_queue: Queue
) -> None:
    backend.send_batch(events_for(rabbitmq_queue, 2))
    assert backend._channel is not None
    connection = backend._channel._connection
    backend.send_batch(events_for(rabbitmq_queue, 2))
    assert backend._channel._connection is connection

    backend.close()
    backend.close()  # safe twice
    assert backend.send_batch(events_for(rabbitmq_queue, 2)) == {}
    assert rabbitmq_queue.count() == 6


def test_empty_batch_sends_nothing(backend: RabbitMQBackend) -> None:
    assert backend.send_batch([]) == {}


@pytest.mark.parametrize(
    "routing_key",
    ["{ext_tenant}.{type}", lambda event: f"{event.extensions['tenant']}.{event.event_type}"],
    ids=["template", "callable"],
)
def test_a_routing_key_template_routes_each_type_to_its_own_key(
    rabbitmq_url: str, unique_name: str, routing_key: Any
) -> None:
    types = ["order.created", "invoice.sent", "user.signed_up"]
    queues = [Queue(rabbitmq_url, f"{unique_name}-{n}") for n in range(3)]
    for queue, event_type in zip(queues, types, strict=True):
        queue.bind(f"{unique_name}.{event_type}")
    events = [published_event(event_type=t, extensions={"tenant": unique_name}) for t in types * 2]
    try:
        with RabbitMQBackend("rabbit", url=rabbitmq_url, routing_key=routing_key) as backend:
            assert backend.send_batch(events) == {}
        got = [[props.headers["cloudEvents_type"] for props, _ in q.get_all()] for q in queues]
    finally:
        for queue in queues:
            queue.delete()
    assert got == [[t, t] for t in types]


def test_a_routing_key_callable_that_fails_rejects_only_that_event(
    rabbitmq_url: str, rabbitmq_queue: Queue
) -> None:
    [good, bad] = events_for(rabbitmq_queue, 2)

    def key(event: Any) -> str:
        if event.id == bad.id:
            raise LookupError("no tenant")
        return str(event.event_type)

    with RabbitMQBackend("rabbit", url=rabbitmq_url, routing_key=key) as backend:
        rejected = backend.send_batch([good, bad])
    assert list(rejected) == [bad.id]
    assert "no routing key for this event: no tenant" in str(rejected[bad.id])
    assert rabbitmq_queue.count() == 1
