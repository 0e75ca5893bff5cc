"""Which events are bound for, or have reached, each destination, on every database."""

from datetime import UTC, datetime

import pytest
from django.test import override_settings

from django_broadcaster.events import CloudEvent
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.outbox.deliveries import (
    DeliveryState,
    Destination,
    awaiting,
    bound_for,
    configured_destinations,
    delivery_states,
    reached,
)
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry
from tests.factories import delivered_to, named_backends

pytestmark = pytest.mark.django_db

BACKENDS = {
    alias: {"BACKEND": "django_broadcaster.backends.LocMemBackend"}
    for alias in ("kafka", "Kafka", "redis")
}
KAFKA = Destination("kafka", is_backend=True)
HANDLER = Destination("handler:app.on_order", is_backend=False, event_types=frozenset({"order"}))


def on_order(event: CloudEvent) -> None:
    """A handler."""


def publish(event_type: str = "order", **fields: object) -> OutboxEvent:
    row = publisher.publish_event(event_type, "shop")
    OutboxEvent.objects.filter(pk=row.pk).update(**fields)
    return OutboxEvent.objects.get(pk=row.pk)


def ids(condition: object) -> set[str]:
    return {row.event_type for row in OutboxEvent.objects.filter(condition)}


@override_settings(BROADCASTER={"BACKENDS": BACKENDS})
def test_bound_for_a_backend_means_every_backend_or_listed_exactly() -> None:
    publish("all")
    publish("kafka", **named_backends("kafka"))
    publish("upper", **named_backends("Kafka"))  # case matters, even on SQLite
    publish("redis", **named_backends("redis"))
    publish("quoted", **named_backends('x"kafka'))
    assert ids(bound_for(KAFKA)) == {"all", "kafka"}


def test_reached_and_awaiting_read_the_delivered_list() -> None:
    publish("done", delivery=delivered_to("kafka", "handler:app.on_order"))
    publish("half", delivery=delivered_to("handler:app.on_order"))
    publish("other", delivery=delivered_to("kafka"))
    assert {row.event_type for row in OutboxEvent.objects.filter(reached(KAFKA))} == {
        "done",
        "other",
    }
    assert ids(awaiting(KAFKA)) == {"half"}
    handler = Destination(HANDLER.name, is_backend=False, event_types=frozenset({"half", "other"}))
    assert ids(awaiting(handler)) == {"other"}


def test_a_catch_all_handler_is_bound_for_everything() -> None:
    publish("a")
    publish("b")
    assert ids(bound_for(Destination("handler:x", is_backend=False))) == {"a", "b"}


@override_settings(BROADCASTER={"BACKENDS": BACKENDS})
def test_configured_destinations_are_backends_then_handlers() -> None:
    registry = EventRegistry()
    registry.register("order")(on_order)
    assert configured_destinations(registry) == [
        Destination("kafka", is_backend=True),
        Destination("Kafka", is_backend=True),
        Destination("redis", is_backend=True),
        Destination(
            f"handler:{__name__}.on_order", is_backend=False, event_types=frozenset({"order"})
        ),
    ]


def test_delivery_states_read_each_destinations_entry() -> None:
    rejected = {
        "state": "rejected",
        "attempts": 2,
        "error": "E: x; y",
        "at": "2026-12-07T10:00:00Z",
    }
    row = publish(
        status=Status.PENDING, delivery={**delivered_to("old-backend"), "kafka": rejected}
    )
    other = Destination("handler:app.other", is_backend=False, event_types=frozenset({"x"}))
    assert delivery_states(row, [KAFKA, HANDLER, other]) == [
        DeliveryState("kafka", "rejected", 2, "E: x; y", datetime(2026, 12, 7, 10, tzinfo=UTC)),
        DeliveryState("handler:app.on_order", "pending"),
        DeliveryState("old-backend", "delivered", 1),
    ]
    row.status = Status.FAILED
    assert delivery_states(row, [HANDLER])[0].state == "not delivered"


@pytest.mark.parametrize("name", ["handler:app.views.<locals>.on_order#2", "a.b", "a b", "ü"])
def test_destination_names_are_matched_exactly_on_every_database(name: str) -> None:
    destination = Destination(name, is_backend=False)
    publish("done", delivery=delivered_to(name))
    publish("other", delivery=delivered_to(name + "x", name.upper()))
    publish("tried", delivery={name: {"state": "rejected", "attempts": 1, "error": "E"}})
    assert ids(reached(destination)) == {"done"}
    assert ids(awaiting(destination)) == {"other", "tried"}
