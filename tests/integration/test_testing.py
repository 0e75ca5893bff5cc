"""The test helpers: capturing published events, asserting on them, delivering at once."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from django_broadcaster.backends import LocMemBackend, locmem
from django_broadcaster.events import CloudEvent
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry
from django_broadcaster.testing import CapturedEvents, captured_events, run_worker

pytestmark = pytest.mark.django_db


@dataclass
class Shipped:
    event_type: ClassVar[str] = "order.shipped"
    source: ClassVar[str] = "shop"
    order: int


@pytest.fixture
def events() -> Iterator[CapturedEvents]:
    with captured_events() as captured:
        publisher.publish_event("order.created", "shop", {"order": {"id": 1, "total": 5}})
        publisher.publish(Shipped(order=1), subject="o-1")
        publisher.publish_events([CloudEvent("order.created", "shop", {"order": {"id": 2}})])
        yield captured


def test_events_published_in_the_block_are_captured_in_order(events: CapturedEvents) -> None:
    assert events.types == ["order.created", "order.shipped", "order.created"]
    assert [event.id for event in events] == [str(row.id) for row in events.rows]
    assert events[1].subject == "o-1"
    assert len(events[:2]) == 2


def test_nothing_is_captured_outside_the_block() -> None:
    with captured_events() as captured:
        pass
    publisher.publish_event("order.created", "shop")
    assert len(captured) == 0


def test_events_of_a_rolled_back_transaction_are_captured_too() -> None:
    with captured_events() as captured, pytest.raises(RuntimeError), transaction.atomic():
        publisher.publish_event("order.created", "shop")
        raise RuntimeError
    assert captured.types == ["order.created"]
    assert not OutboxEvent.objects.exists()


def test_of_type_takes_a_type_or_a_typed_class(events: CapturedEvents) -> None:
    assert len(events.of_type("order.created")) == 2
    assert [event.data for event in events.of_type(Shipped)] == [{"order": 1}]


def test_assert_published_matches_nested_data_and_attributes(events: CapturedEvents) -> None:
    found = events.assert_published("order.created", data__contains={"order": {"id": 1}})
    assert found[0].data["order"]["total"] == 5
    events.assert_published("order.created", count=2, source="shop")
    events.assert_published(Shipped, subject="o-1", data={"order": 1})
    events.assert_published("order.created", source__contains="sho")
    events.assert_not_published("order.cancelled")
    events.assert_not_published("order.created", data__contains={"order": {"id": 3}})


def test_a_failed_assertion_says_what_was_published(events: CapturedEvents) -> None:
    with pytest.raises(AssertionError) as failure:
        events.assert_published("order.created", count=1)
    message = str(failure.value)
    assert "Expected 1 'order.created' event(s), found 2." in message
    assert "order.shipped {'order': 1}" in message


def test_an_unknown_lookup_is_an_error(events: CapturedEvents) -> None:
    with pytest.raises(TypeError, match="Unknown lookup 'colour'"):
        events.filter("order.created", colour="red")
    with pytest.raises(TypeError, match="Unknown lookup 'data__startswith'"):
        events.filter("order.created", data__startswith="x")


def test_clear_forgets_what_was_captured(events: CapturedEvents) -> None:
    events.clear()
    assert list(events) == []


def test_the_pytest_fixture_captures_the_test(broadcaster_events: CapturedEvents) -> None:
    publisher.publish_event("order.created", "shop")
    broadcaster_events.assert_published("order.created", count=1)


def test_run_worker_delivers_everything_due_to_backends_and_handlers() -> None:
    registry = EventRegistry()
    handled: list[CloudEvent] = []
    registry.register("order.created")(handled.append)
    rows = [publisher.publish_event("order.created", "shop", {"n": n}) for n in range(3)]
    stats = run_worker(registry=registry)
    assert (stats.published, len(locmem.outbox), len(handled)) == (3, 3, 3)
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {Status.PUBLISHED}
    assert {event.id for event in handled} == {str(row.id) for row in rows}


def test_run_worker_reschedules_failures_instead_of_looping() -> None:
    registry = EventRegistry()

    @registry.register("order.created")
    def broken(event: CloudEvent) -> None:
        raise ValueError("no stock")

    publisher.publish_event("order.created", "shop")
    backend = LocMemBackend("default")
    stats = run_worker(backends={"default": backend}, registry=registry)
    assert (stats.retried, stats.published, len(backend.events)) == (1, 0, 1)
    row = OutboxEvent.objects.get()
    assert (row.status, row.retry_count, row.delivered) == (Status.PENDING, 1, ["default"])


@override_settings(BROADCASTER={"BATCH_SIZE": 1})
def test_run_worker_goes_on_after_a_batch_that_only_expired() -> None:
    # 0.2.0's run_worker() counted a batch's outcomes but its expired ones, so a batch that only
    # expired looked empty and it stopped with events still due.
    gone = publisher.publish_event("t", "s", expires_at=timezone.now() - timedelta(seconds=1))
    due = publisher.publish_event("t", "s")
    stats = run_worker(backends={"default": LocMemBackend("default")}, registry=EventRegistry())
    assert (stats.expired, stats.published) == (1, 1)
    statuses = dict(OutboxEvent.objects.values_list("pk", "status"))
    assert statuses == {gone.pk: Status.EXPIRED, due.pk: Status.PUBLISHED}
