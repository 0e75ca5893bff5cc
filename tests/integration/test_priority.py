"""Priority: checked at the call site, stored, and claimed highest first without breaking any
key's order."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from asgiref.sync import async_to_sync
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_broadcaster.backends import LocMemBackend
from django_broadcaster.events import CloudEvent
from django_broadcaster.exceptions import InvalidEvent
from django_broadcaster.outbox import leases
from django_broadcaster.outbox.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry
from django_broadcaster.testing import run_worker
from tests.integration.test_upgrade import APP, migrate

pytestmark = pytest.mark.django_db(transaction=True)
LEASE = timedelta(minutes=1)


@dataclass
class Restocked:
    event_type: ClassVar[str] = "shop.restocked"
    sku: str


#: Each way to publish, called with the keyword arguments under test.
PUBLISHERS: dict[str, Callable[..., object]] = {
    "publish_event": lambda **kw: publisher.publish_event("shop.restocked", "shop", **kw),
    "publish": lambda **kw: publisher.publish(Restocked("a"), source="shop", **kw),
    "publish_cloud_event": lambda **kw: publisher.publish_cloud_event(
        CloudEvent("shop.restocked", "shop"), **kw
    ),
    "publish_events": lambda **kw: publisher.publish_events(
        [CloudEvent("shop.restocked", "shop")] * 2, **kw
    ),
    "apublish_event": lambda **kw: async_to_sync(publisher.apublish_event)(
        "shop.restocked", "shop", **kw
    ),
}


@pytest.mark.parametrize("publish", PUBLISHERS.values(), ids=PUBLISHERS.keys())
@pytest.mark.parametrize(
    ("priority", "error", "message"),
    [
        (101, InvalidEvent, "priority must be from -100 to 100, got 101"),
        (-101, InvalidEvent, "priority must be from -100 to 100, got -101"),
        (2.0, TypeError, "priority must be an integer, got float 2.0"),
        (True, TypeError, "priority must be an integer, got bool True"),
        ("5", TypeError, "priority must be an integer, got str '5'"),
    ],
)
def test_a_bad_priority_is_refused_before_any_sql(
    publish: Callable[..., object], priority: object, error: type[Exception], message: str
) -> None:
    with transaction.atomic():
        with (
            CaptureQueriesContext(connection) as queries,
            pytest.raises(error, match=message),
        ):
            publish(priority=priority)
        assert queries.captured_queries == []
        after = publisher.publish_event("order.created", "order-service")  # the caller goes on
    assert list(OutboxEvent.objects.values_list("pk", flat=True)) == [after.pk]


@pytest.mark.parametrize("publish", PUBLISHERS.values(), ids=PUBLISHERS.keys())
def test_each_way_to_publish_stores_the_priority(publish: Callable[..., object]) -> None:
    publish(priority=-100)
    publish(priority=100)
    publish()
    stored = sorted(set(OutboxEvent.objects.values_list("priority", flat=True)))
    assert stored == [-100, 0, 100]


def publish(name: str, priority: int = 0, key: str | None = None) -> OutboxEvent:
    return publisher.publish_event("t", "s", {"name": name}, priority=priority, partition_key=key)


def claimed(limit: int) -> list[str]:
    return [row.event.data["name"] for row in leases.claim(limit, LEASE).rows]  # type: ignore[index]


def test_the_claim_takes_higher_priorities_first_then_the_oldest() -> None:
    for name, priority in [("low-1", -5), ("normal-1", 0), ("high-1", 7), ("normal-2", 0)]:
        publish(name, priority)
    later = publish("high-later", 7)
    OutboxEvent.objects.filter(pk=later.pk).update(scheduled_at=timezone.now() + timedelta(hours=1))
    publish("high-2", 7)
    assert claimed(2) == ["high-1", "high-2"]  # a batch is returned in publish order
    assert claimed(2) == ["normal-1", "normal-2"]
    assert claimed(9) == ["low-1"]  # high-later is not due


def test_a_keyed_event_never_overtakes_an_earlier_event_of_its_key() -> None:
    for n in range(3):
        publish(f"low-{n}")
    publish("low-keyed", key="order-1")
    publish("high-keyed", priority=100, key="order-1")
    publish("high-other-key", priority=100, key="order-2")
    publish("high", priority=100)

    # high-keyed waits for low-keyed, which comes at its own priority and place.
    assert claimed(2) == ["high-other-key", "high"]
    assert claimed(1) == ["low-0"]
    first = leases.claim(9, LEASE)
    assert [row.event.data["name"] for row in first.rows] == ["low-1", "low-2", "low-keyed"]  # type: ignore[index]
    OutboxEvent.objects.filter(pk__in=[row.pk for row in first.rows]).update(
        status=Status.PUBLISHED
    )
    assert claimed(9) == ["high-keyed"]


def test_a_worker_keeps_every_keys_order_whatever_the_priorities() -> None:
    # Each key gets low events first and high ones later, the order a priority would upset.
    keys = [f"key-{k}" for k in range(8)]
    for n in range(40):
        for key in keys:
            publish(f"{key}/{n}", priority=100 if n % 10 > 6 else -(n % 3), key=key)
    backend = LocMemBackend("mem")
    with override_settings(BROADCASTER={"BATCH_SIZE": 5}):  # many batches, many chances
        run_worker(backends={"mem": backend}, registry=EventRegistry())
    arrived: dict[str, list[int]] = {}
    for event in backend.events:
        key, n = event.data["name"].split("/")  # type: ignore[index]
        arrived.setdefault(key, []).append(int(n))
    assert arrived == {key: list(range(40)) for key in keys}


def due_index() -> dict[str, Any]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, OutboxEvent._meta.db_table)
    return found["outbox_due_idx"]


def test_migration_0011_adds_the_priority_and_can_be_undone() -> None:
    try:
        old = migrate("0010_dashboard_indexes").get_model(APP, "OutboxEvent")
        assert due_index()["columns"] == ["scheduled_at"]
        waiting = old.objects.create(event_type="t", source="s", status="pending")
        migrate(None)
        assert OutboxEvent.objects.get(pk=waiting.pk).priority == 0
        assert (due_index()["columns"], due_index()["orders"]) == (
            ["priority", "scheduled_at"],
            ["DESC", "ASC"],
        )
        older = migrate("0010_dashboard_indexes").get_model(APP, "OutboxEvent")
        assert due_index()["columns"] == ["scheduled_at"]
        assert "priority" not in {field.name for field in older._meta.get_fields()}
        assert older.objects.filter(pk=waiting.pk).exists()
    finally:
        migrate(None)
