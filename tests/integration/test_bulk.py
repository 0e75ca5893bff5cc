"""Bulk publishing writes the same rows as single publishing, with COPY on PostgreSQL."""

from datetime import datetime, timezone
from typing import Any

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from django_broadcaster.events import CloudEvent
from django_broadcaster.models import OutboxEvent
from django_broadcaster.outbox.bulk import uses_copy
from django_broadcaster.publishers import publisher

pytestmark = pytest.mark.django_db(transaction=True)

WHEN = datetime(2026, 11, 23, 12, 30, tzinfo=timezone.utc)
#: Values that COPY's text format must escape (tab, newline, backslash, its NULL marker \N).
AWKWARD = 'tab\there\nnew line \\ back\\slash \\N "quoted" é ✓'
#: The same without control characters, which CloudEvents attributes may not contain.
ATTRIBUTE = 'back\\slash \\N "quoted" é ✓'


def awkward_events() -> list[CloudEvent]:
    """Return events whose columns cover empty, NULL and escaped values of every kind."""
    return [
        CloudEvent(
            "order.created",
            "https://shop.example.com/orders",
            {"note": AWKWARD, "lines": [{"sku": "A", "n": 1}], "none": None},
            subject=ATTRIBUTE,
            time=WHEN,
            extensions={"partitionkey": "order-7", "tenant": ATTRIBUTE},
        ),
        CloudEvent("order.paid", "shop", None, time=WHEN),
        CloudEvent("order.paid", "shop", AWKWARD, datacontenttype="text/plain", time=WHEN),
        CloudEvent("order.paid", "shop", [1, 2.5, True, None], dataschema="https://s/1", time=WHEN),
    ]


def columns(row: OutboxEvent) -> dict[str, Any]:
    """Return the stored columns of ``row`` that do not depend on when it was written."""
    values = OutboxEvent.objects.filter(pk=row.pk).values().get()
    for name in ("id", "created_at"):
        del values[name]
    return values


def test_bulk_rows_equal_single_rows_column_for_column() -> None:
    options: dict[str, Any] = {"scheduled_at": WHEN, "max_retries": 2, "backends": ["default"]}
    singles = [publisher.publish_cloud_event(event, **options) for event in awkward_events()]
    bulk = publisher.publish_events(awkward_events(), **options)
    assert [columns(row) for row in bulk] == [columns(row) for row in singles]
    assert columns(bulk[0])["data"]["note"] == AWKWARD


def test_bulk_rows_count_as_saved() -> None:
    [row] = publisher.publish_events([CloudEvent("t", "s", {"n": 1})])
    assert not row._state.adding
    assert row._state.db == "default"
    row.subject = "later"
    row.save()
    assert OutboxEvent.objects.get().subject == "later"


@pytest.mark.postgres
def test_postgresql_writes_with_one_copy_that_debug_queries_show() -> None:
    assert uses_copy(connection)
    with CaptureQueriesContext(connection) as queries:
        publisher.publish_events([CloudEvent("t", "s", {"n": n}) for n in range(2500)])
    [statement] = [q["sql"] for q in queries.captured_queries]
    assert statement.startswith('COPY "outbox_events" (')
    assert statement.endswith("(2500 rows)")
    assert OutboxEvent.objects.count() == 2500


def test_a_duplicate_id_raises_djangos_integrity_error_and_writes_nothing() -> None:
    [first] = publisher.publish_events([CloudEvent("t", "s", {"n": 1})])
    again = [CloudEvent("t", "s", {"n": 2}), CloudEvent("t", "s", {"n": 3}, id=str(first.pk))]
    with pytest.raises(IntegrityError):
        publisher.publish_events(again)
    assert OutboxEvent.objects.count() == 1
