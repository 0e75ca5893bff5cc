"""Handler predicates: a handler registered ``when=`` is a destination only of the events its
predicate chose when they were published; a predicate that raises is that handler's failure."""

import logging
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import pytest

from django_broadcaster.backends import locmem
from django_broadcaster.consumers.processing import Disposition, Message, Processor
from django_broadcaster.events import CloudEvent
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.outbox.deliveries import configured_destinations, delivery_states
from django_broadcaster.outbox.health import lags, outbox_status
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry, event_registry, handler_name
from django_broadcaster.retry import RetryPolicy
from django_broadcaster.testing import run_worker

pytestmark = pytest.mark.django_db

ORDER = "tests.predicates.order_placed"


@dataclass(frozen=True)
class OrderPlaced:
    event_type: ClassVar[str] = "tests.predicates.typed_order"
    source: ClassVar[str] = "tests/shop"
    total: int


class Calls:
    """What the handlers were called with, in one test (the fixture starts it anew)."""

    def __init__(self) -> None:
        self.big: list[int] = []
        self.every: list[int] = []


calls_now = Calls()


def big_orders(event: CloudEvent) -> None:
    calls_now.big.append(event.data["n"])


def every_order(event: CloudEvent) -> None:
    calls_now.every.append(event.data["n"])


BIG, EVERY = handler_name(big_orders), handler_name(every_order)


@pytest.fixture
def calls() -> Iterator[Calls]:
    """Register the handlers in the global registry, which the publisher asks; remove them."""
    global calls_now
    calls_now = Calls()
    event_registry.register(ORDER, when=lambda event: event.data["total"] > 100)(big_orders)
    event_registry.register(ORDER)(every_order)
    yield calls_now
    event_registry.predicates.pop(BIG)
    event_registry.unregister(big_orders, ORDER)
    event_registry.unregister(every_order, ORDER)


def orders(count: int) -> list[CloudEvent]:
    """Return ``count`` orders; the odd ones are over 100."""
    return [
        CloudEvent(ORDER, "tests/shop", data={"n": n, "total": 50 + 100 * (n % 2)})
        for n in range(count)
    ]


def pending_by_destination() -> dict[str, int]:
    return {d.name: d.pending for d in outbox_status().destinations}


def test_a_predicate_filters_half_of_1000_events(calls: Calls) -> None:
    publisher.publish_events(orders(1000))
    # Fixed at publish time: the other half is never pending for the handler.
    assert pending_by_destination()[BIG] == 500
    assert pending_by_destination()[EVERY] == 1000
    listed = OutboxEvent.objects.filter(delivery__has_key=BIG)
    assert sorted(row.data["n"] % 2 for row in listed) == [1] * 500
    assert lags()[1][BIG] is not None

    assert run_worker().published == 1000
    assert sorted(calls.big) == list(range(1, 1000, 2))  # exactly the right half, once each
    assert sorted(calls.every) == list(range(1000))
    assert pending_by_destination()[BIG] == 0 and lags()[1][BIG] is None
    assert OutboxEvent.objects.filter(delivery__has_key=BIG).count() == 500
    small = OutboxEvent.objects.get(data__n=0)
    states = delivery_states(small, configured_destinations())
    assert BIG not in {state.destination for state in states}
    assert EVERY in {state.destination for state in states}


def test_a_raising_predicate_is_that_handlers_failure_only(
    calls: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    bad = CloudEvent(ORDER, "tests/shop", data={"n": 7, "total": None})
    with caplog.at_level(logging.ERROR, logger="django_broadcaster.predicates"):
        row = publisher.publish_cloud_event(bad, max_retries=1)
    [record] = caplog.records
    assert record.getMessage() == (
        f"Predicate of {BIG} failed on a {ORDER} event from tests/shop: the handler fails for "
        "that event."
    )
    assert record.exc_info is not None and record.exc_info[0] is TypeError  # the traceback

    run_worker()  # the backend and the other handler get the event; the failure is retried
    row.refresh_from_db()
    assert row.status == Status.PENDING and row.retry_count == 1
    assert calls.every == [7] and calls.big == [] and len(locmem.outbox) == 1
    entry = row.delivery[BIG]
    assert entry["state"] == "rejected"
    assert entry["error"].startswith("PredicateFailed: TypeError: '>' not supported")

    OutboxEvent.objects.filter(pk=row.pk).update(scheduled_at=row.created_at)
    run_worker()
    row.refresh_from_db()
    assert row.status == Status.FAILED and calls.big == [] and calls.every == [7]
    assert f"{BIG}: PredicateFailed: TypeError" in row.last_error
    assert len(locmem.outbox) == 1  # delivered once: only the failed destination was retried


def test_a_typed_events_predicate_gets_the_instance(calls: Calls) -> None:
    asked: list[OrderPlaced] = []

    def big(order: OrderPlaced) -> bool:
        asked.append(order)
        return order.total > 100

    event_registry.register(OrderPlaced, when=big)(big_orders)
    try:
        publisher.publish(OrderPlaced(total=500))
        publisher.publish(OrderPlaced(total=5))
    finally:
        event_registry.unregister(big_orders, OrderPlaced.event_type)
    assert asked == [OrderPlaced(total=500), OrderPlaced(total=5)]  # once per event
    assert OutboxEvent.objects.filter(delivery__has_key=BIG).count() == 1


@pytest.mark.django_db(transaction=True)  # the consumer discards connections after an error
def test_a_consumer_handlers_predicate_is_asked_at_each_message() -> None:
    registry, got = EventRegistry(), []
    registry.register(ORDER, when=lambda event: event.data["total"] > 100)(got.append)
    processor = Processor(registry, RetryPolicy(max_attempts=1), threading.Event())

    def process(n: int, total: object) -> Disposition:
        event = CloudEvent(ORDER, "tests/shop", {"n": n, "total": total}, id=str(uuid.uuid4()))
        return processor.process(Message("test", str(n), None, event))

    assert process(1, 500) == process(2, 5) == Disposition.PROCESSED
    assert [event.data["n"] for event in got] == [1]
    assert process(3, None) == Disposition.DEAD_LETTERED  # a predicate's error, as a handler's
