"""Typed events end to end: published by instance, handled by class, rebuilt by the handler."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import pytest

from django_broadcaster.backends import locmem
from django_broadcaster.events import CloudEvent
from django_broadcaster.exceptions import InvalidEvent
from django_broadcaster.models import OutboxEvent
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import event_registry
from django_broadcaster.testing import run_worker
from django_broadcaster.typed import from_cloud_event

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class OrderCreated:
    event_type: ClassVar[str] = "order.created"
    source: ClassVar[str] = "shop/orders"
    order_id: int


received: list[OrderCreated] = []


def on_order_created(event: CloudEvent) -> None:
    received.append(from_cloud_event(OrderCreated, event))


@pytest.fixture
def registered() -> Iterator[None]:
    event_registry.register(OrderCreated)(on_order_created)
    received.clear()
    yield
    event_registry.unregister(on_order_created, "order.created")


def test_publish_writes_the_class_type_source_and_fields() -> None:
    row = publisher.publish(OrderCreated(order_id=7), subject="o-7", max_retries=1)
    stored = OutboxEvent.objects.get(pk=row.pk)
    assert (stored.event_type, stored.source, stored.subject, stored.data, stored.max_retries) == (
        "order.created",
        "shop/orders",
        "o-7",
        {"order_id": 7},
        1,
    )


def test_publish_refuses_plain_data() -> None:
    with pytest.raises(TypeError, match="use publish_event"):
        publisher.publish({"order_id": 7})
    assert not OutboxEvent.objects.exists()


def test_publish_validates_like_publish_event() -> None:
    with pytest.raises(InvalidEvent, match="Unknown backend alias"):
        publisher.publish(OrderCreated(order_id=7), backends=["nope"])


@pytest.mark.usefixtures("registered")
def test_a_handler_registered_by_class_gets_the_event_and_rebuilds_it() -> None:
    publisher.publish(OrderCreated(order_id=7))
    assert run_worker().published == 1
    assert received == [OrderCreated(order_id=7)]
    assert [event.data for event in locmem.outbox] == [{"order_id": 7}]
