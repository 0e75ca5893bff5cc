"""Which events are bound for, or have reached, each destination, on every database."""

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
    parse_errors,
    reached,
)
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry

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
    publish("kafka", backends=["kafka"])
    publish("upper", backends=["Kafka"])  # case matters, even on SQLite
    publish("redis", backends=["redis"])
    publish("quoted", backends=['x"kafka'])
    assert ids(bound_for(KAFKA)) == {"all", "kafka"}


def test_reached_and_awaiting_read_the_delivered_list() -> None:
    publish("done", delivered=["kafka", "handler:app.on_order"])
    publish("half", delivered=["handler:app.on_order"])
    publish("other", delivered=["kafka"])
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


def test_parse_errors_splits_on_known_destinations_only() -> None:
    last_error = "kafka: EventRejected: too big; a; b; handler:app.on_order: ValueError: x"
    assert parse_errors(last_error, ["kafka", "handler:app.on_order"]) == {
        "kafka": "EventRejected: too big; a; b",
        "handler:app.on_order": "ValueError: x",
    }
    assert parse_errors("boom", ["kafka"]) == {"": "boom"}
    assert parse_errors("", ["kafka"]) == {}


def test_delivery_states_cover_bound_and_reached_destinations() -> None:
    row = publish(
        status=Status.PENDING,
        delivered=["old-backend"],
        last_error="kafka: unavailable: connection refused",
    )
    other = Destination("handler:app.other", is_backend=False, event_types=frozenset({"x"}))
    assert delivery_states(row, [KAFKA, HANDLER, other]) == [
        DeliveryState("kafka", "error", "unavailable: connection refused"),
        DeliveryState("handler:app.on_order", "waiting"),
        DeliveryState("old-backend", "delivered"),
    ]
    row.status = Status.FAILED
    assert delivery_states(row, [HANDLER])[0].state == "not delivered"
