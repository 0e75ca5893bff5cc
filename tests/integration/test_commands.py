"""Commands: one handler, run now by ``handle()`` in the caller's transaction, or later by the
worker; what handlers return is published as if they had called the publisher."""

from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

import pytest
from asgiref.sync import async_to_sync
from django.db import transaction
from django.utils import timezone

from django_broadcaster.backends import locmem
from django_broadcaster.bus import ahandle, handle
from django_broadcaster.commands import Command
from django_broadcaster.events import CloudEvent
from django_broadcaster.exceptions import BroadcasterImproperlyConfigured, InvalidEvent
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry
from django_broadcaster.testing import run_worker

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class PlaceOrder(Command):
    event_type: ClassVar[str] = "tests.commands.place_order"
    source: ClassVar[str] = "tests/shop"
    sku: str
    quantity: int = 1


@dataclass(frozen=True)
class OrderPlaced:
    event_type: ClassVar[str] = "tests.commands.order_placed"
    source: ClassVar[str] = "tests/shop"
    sku: str


class OutOfStock(Exception):
    pass


def place_order(command: PlaceOrder) -> int:
    if command.quantity > 10:
        raise OutOfStock(command.sku)
    return command.quantity * 100


def place_and_announce(command: PlaceOrder) -> list[object]:
    """Return an event and a CloudEvent: both are published in the handler's transaction."""
    note = CloudEvent(event_type="tests.commands.noted", source="tests/shop", data={"n": 1})
    return [OrderPlaced(sku=command.sku), note]


def registry_with(handler: object) -> EventRegistry:
    registry = EventRegistry()
    registry.register(PlaceOrder)(handler)  # type: ignore[arg-type]
    return registry


def types_in_outbox() -> list[str]:
    return sorted(OutboxEvent.objects.values_list("event_type", flat=True))


def test_handle_returns_the_handlers_result() -> None:
    assert handle(PlaceOrder(sku="tea", quantity=3), registry=registry_with(place_order)) == 300
    assert types_in_outbox() == []  # an int is a result, not a message


def test_the_handlers_exception_reaches_the_caller_unchanged() -> None:
    registry = registry_with(place_order)
    with transaction.atomic():
        with pytest.raises(OutOfStock) as raised:
            handle(PlaceOrder(sku="tea", quantity=11), registry=registry)
        assert raised.value.args == ("tea",)
        # The caller's transaction goes on: only the handler's savepoint rolled back.
        publisher.publish(OrderPlaced(sku="coffee"))
    assert types_in_outbox() == ["tests.commands.order_placed"]


def test_returned_messages_are_published_and_returned() -> None:
    result = handle(PlaceOrder(sku="tea"), registry=registry_with(place_and_announce))
    assert isinstance(result[0], OrderPlaced)
    assert types_in_outbox() == ["tests.commands.noted", "tests.commands.order_placed"]


@pytest.mark.django_db(transaction=True)
def test_returned_events_commit_with_the_callers_transaction() -> None:
    registry = registry_with(place_and_announce)
    with transaction.atomic():
        handle(PlaceOrder(sku="tea"), registry=registry)
    assert types_in_outbox() == ["tests.commands.noted", "tests.commands.order_placed"]


@pytest.mark.django_db(transaction=True)
def test_returned_events_are_gone_when_the_caller_rolls_back() -> None:
    registry = registry_with(place_and_announce)
    with pytest.raises(RuntimeError, match="checkout failed"), transaction.atomic():
        handle(PlaceOrder(sku="tea"), registry=registry)
        raise RuntimeError("checkout failed")
    assert types_in_outbox() == []


def test_handle_refuses_what_is_not_a_command() -> None:
    with pytest.raises(TypeError, match="handle\\(\\) takes a command, not a OrderPlaced"):
        handle(OrderPlaced(sku="tea"), registry=EventRegistry())  # type: ignore[arg-type]


def test_handle_refuses_a_command_without_exactly_one_handler() -> None:
    with pytest.raises(BroadcasterImproperlyConfigured, match="exactly one handler.*none"):
        handle(PlaceOrder(sku="tea"), registry=EventRegistry())
    registry = registry_with(place_order)
    registry.register(PlaceOrder)(place_and_announce)
    with pytest.raises(BroadcasterImproperlyConfigured, match="place_order, handler:.*announce"):
        handle(PlaceOrder(sku="tea"), registry=registry)
    assert types_in_outbox() == []


def test_ahandle_does_the_same_from_async_code() -> None:
    registry = registry_with(place_order)
    assert async_to_sync(ahandle)(PlaceOrder(sku="tea", quantity=2), registry=registry) == 200


def test_a_command_through_the_outbox_runs_its_one_handler_only() -> None:
    received: list[PlaceOrder] = []
    registry = EventRegistry()
    registry.register(PlaceOrder)(received.append)
    seen_by_catch_all: list[CloudEvent] = []
    registry.register()(seen_by_catch_all.append)
    later = timezone.now() - timedelta(seconds=1)
    row = publisher.publish(PlaceOrder(sku="tea", quantity=2), scheduled_at=later, max_retries=2)
    assert (row.backends, row.max_retries) == ([], 2)

    assert run_worker(registry=registry).published == 1
    assert received == [PlaceOrder(sku="tea", quantity=2)]  # the instance, rebuilt
    assert seen_by_catch_all == [] and len(locmem.outbox) == 0  # point to point


def test_a_command_scheduled_for_later_waits() -> None:
    received: list[PlaceOrder] = []
    registry = EventRegistry()
    registry.register(PlaceOrder)(received.append)
    publisher.publish(PlaceOrder(sku="tea"), scheduled_at=timezone.now() + timedelta(hours=1))
    assert run_worker(registry=registry).handled == 0 and received == []


def test_a_command_is_never_sent_to_a_backend() -> None:
    with pytest.raises(InvalidEvent, match="is a command: it goes to its one handler"):
        publisher.publish(PlaceOrder(sku="tea"), backends=["default"])
    assert types_in_outbox() == []


def test_a_command_handler_that_the_worker_runs_publishes_what_it_returns() -> None:
    publisher.publish(PlaceOrder(sku="tea"))
    assert run_worker(registry=registry_with(place_and_announce)).published == 3
    assert OutboxEvent.objects.filter(status=Status.PUBLISHED).count() == 3
    assert [event.event_type for event in locmem.outbox] == [
        "tests.commands.order_placed",
        "tests.commands.noted",
    ]


def test_an_event_handler_may_return_events_and_commands() -> None:
    registry = registry_with(place_order)

    @registry.register(OrderPlaced)
    def reorder(event: CloudEvent) -> tuple[object, ...]:
        return (PlaceOrder(sku=event.data["sku"], quantity=5),)

    publisher.publish(OrderPlaced(sku="tea"))
    assert run_worker(registry=registry).published == 2
    assert types_in_outbox() == ["tests.commands.order_placed", "tests.commands.place_order"]


def test_an_event_handler_returning_anything_else_fails_naming_itself() -> None:
    registry = EventRegistry()

    @registry.register(OrderPlaced)
    def forgetful(event: CloudEvent) -> bool:
        return True

    row = publisher.publish(OrderPlaced(sku="tea"), max_retries=0)
    assert run_worker(registry=registry).failed == 1
    row.refresh_from_db()
    assert "TypeError: handler:tests.integration.test_commands" in row.last_error
    assert "forgetful returned a bool" in row.last_error
