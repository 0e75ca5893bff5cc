"""Outboxes written by 0.1.1 and by 0.2.0 upgrade in place, and the worker carries on with them.

Each test migrates the test database back to the old schema, writes the old rows, migrates
forward and checks every row; the database ends at the latest migration again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, timedelta
from typing import Any

import pytest
from django.apps.registry import Apps
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from django_broadcaster.backends import LocMemBackend
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.registry import EventRegistry, event_registry
from django_broadcaster.testing import run_worker
from tests.doubles import RejectingBackend
from tests.fixtures import outbox_0_2_0

pytestmark = pytest.mark.django_db(transaction=True)

APP = "django_broadcaster"
ON_ORDER = "handler:tests.fixtures.outbox_0_2_0.on_order"
ON_REFUND = "handler:tests.fixtures.outbox_0_2_0.on_refund"
DATETIMES = {"created_at", "scheduled_at", "published_at", "time", "expires_at", "leased_until"}


def migrate(name: str | None) -> Apps:
    """Migrate the app to migration ``name`` (``None``: the latest); return that state's apps."""
    executor = MigrationExecutor(connection)
    target = (APP, name) if name else executor.loader.graph.leaf_nodes(APP)[0]
    executor.migrate([target])
    return MigrationExecutor(connection).loader.project_state([target]).apps


@pytest.fixture
def back_at_the_end() -> Iterator[None]:
    yield
    migrate(None)


@pytest.fixture
def fixture_handlers() -> Iterator[EventRegistry]:
    """Register the fixture's handlers globally (the migration reads the global registry)."""
    registry = EventRegistry()
    for event_type, handler in outbox_0_2_0.handlers():
        event_registry.register(event_type)(handler)
        registry.register(event_type)(handler)
    yield registry
    for event_type, handler in outbox_0_2_0.handlers():
        event_registry.unregister(handler, event_type)


def delivered(attempts: int = 1) -> dict[str, Any]:
    return {"state": "delivered", "attempts": attempts}


def failed(state: str, error: str) -> dict[str, Any]:
    return {"state": state, "attempts": 1, "error": error}


def label(row: OutboxEvent) -> str:
    """Return which of the fixture's rows ``row`` is: its data's number, and its status."""
    return f"{row.data.get('n', 'reject')} {row.status}"


def pending() -> dict[str, Any]:
    return {"state": "pending", "attempts": 0}


def column_values(row: dict[str, Any]) -> dict[str, Any]:
    values = dict(row)
    for name in DATETIMES & values.keys():
        if values[name] is not None:
            moment = parse_datetime(values[name])
            assert moment is not None, values[name]
            values[name] = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return values


def test_a_0_2_0_outbox_upgrades_in_place(
    back_at_the_end: None, fixture_handlers: EventRegistry
) -> None:
    old = migrate("0008_event_data_field").get_model(APP, "OutboxEvent")
    for row in outbox_0_2_0.rows():
        old.objects.create(**column_values(row))
    with override_settings(BROADCASTER={"BACKENDS": outbox_0_2_0.BACKENDS}):
        migrate(None)

    down = {"down": failed("unavailable", "unavailable: connection refused")}
    too_large = {"rejecting": failed("rejected", "EventRejected: too large for this broker")}
    refused = failed("rejected", "ValueError: no refunds today")
    rows = {label(row): row for row in OutboxEvent.objects.all()}
    assert {name: row.delivery for name, row in rows.items()} == {
        "1 pending": {ON_ORDER: delivered(), "good": delivered(), "rejecting": delivered(), **down},
        "7 published": {ON_ORDER: delivered(), "good": delivered(), "rejecting": delivered()},
        "2 published": {ON_ORDER: delivered(), "good": delivered()},
        "reject failed": {ON_ORDER: delivered(), "good": delivered(), **down, **too_large},
        "reject pending": {ON_ORDER: delivered(), "good": delivered(), **down, **too_large},
        "3 pending": {"good": delivered(), ON_REFUND: refused},
        "4 expired": {},
        "5 pending": {"down": pending(), "good": pending()},
        "6 pending": {},
    }
    assert rows["4 expired"].last_error.startswith("expired at ")  # last_error is kept
    assert {row.priority for row in rows.values()} == {0}  # 0011: the default priority

    # The worker goes on from where 0.2.0 left off: only what is missing is sent.
    OutboxEvent.objects.filter(status=Status.PENDING).update(scheduled_at=timezone.now())
    good = LocMemBackend("good")
    backends = {
        "good": good,
        "rejecting": RejectingBackend("rejecting"),
        "down": LocMemBackend("down"),
    }
    with override_settings(BROADCASTER={"BACKENDS": outbox_0_2_0.BACKENDS}):
        run_worker(backends=backends, registry=fixture_handlers)
    assert sorted(event.data["n"] for event in good.events) == [5, 6]
    first = OutboxEvent.objects.get(pk=rows["1 pending"].pk)
    assert first.status == Status.PUBLISHED
    assert first.delivery["down"]["attempts"] == 2


def test_a_0_1_1_outbox_upgrades_in_place(back_at_the_end: None) -> None:
    old = migrate("0001_initial").get_model(APP, "OutboxEvent")
    now = timezone.now() - timedelta(minutes=5)
    for status, backend in [
        ("pending", ""),
        ("processing", "default"),
        ("published", "default"),
        ("published", ""),
        ("failed", ""),
        ("retry", "default"),
    ]:
        old.objects.create(
            id=uuid.uuid4(),
            spec_version="1.0",
            event_type=f"legacy.{status}",
            source="shop",
            data={"backend": backend},
            status=status,
            created_at=now,
            updated_at=now,
            scheduled_at=now,
            retry_count=1 if status in ("failed", "retry") else 0,
            max_retries=3,
            last_error="Connection refused" if status in ("failed", "retry") else "",
            publisher_backend=backend,
            publisher_config={},
        )
    migrate(None)

    rows = {(row.event_type, row.data["backend"]): row for row in OutboxEvent.objects.all()}
    assert {key: (row.status, row.backends, row.delivery) for key, row in rows.items()} == {
        ("legacy.pending", ""): ("pending", None, {}),
        ("legacy.processing", "default"): ("pending", ["default"], {"default": pending()}),
        ("legacy.published", "default"): ("published", ["default"], {"default": delivered()}),
        ("legacy.published", ""): ("published", None, {}),
        ("legacy.failed", ""): ("failed", None, {}),
        ("legacy.retry", "default"): ("pending", ["default"], {"default": pending()}),
    }
    assert rows["legacy.failed", ""].last_error == "Connection refused"
    stats = run_worker(backends={"default": LocMemBackend("default")}, registry=EventRegistry())
    assert stats.published == 3
    assert not OutboxEvent.objects.filter(status=Status.PENDING).exists()


def test_the_upgrade_can_be_undone(back_at_the_end: None, fixture_handlers: EventRegistry) -> None:
    old = migrate("0008_event_data_field").get_model(APP, "OutboxEvent")
    for row in outbox_0_2_0.rows():
        old.objects.create(**column_values(row))
    with override_settings(BROADCASTER={"BACKENDS": outbox_0_2_0.BACKENDS}):
        migrate(None)
        undone = migrate("0008_event_data_field").get_model(APP, "OutboxEvent")
    again = {str(row.pk): sorted(row.delivered) for row in undone.objects.all()}
    expected = {str(uuid.UUID(row["id"])): sorted(row["delivered"]) for row in outbox_0_2_0.rows()}
    assert again == expected


def test_the_fixture_holds_every_state() -> None:
    statuses = {row["status"] for row in outbox_0_2_0.rows()}
    assert statuses == {"pending", "published", "failed", "expired"}
