"""Retention: old finished events are deleted in batches, pending ones never."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.outbox.retention import (
    PeriodicCleanup,
    delete_old_events,
    format_age,
    old_events,
    parse_age,
)
from django_broadcaster.publishers import publisher

pytestmark = pytest.mark.django_db
NOW = timezone.now()


def event(status: str, age: timedelta, name: str = "e") -> OutboxEvent:
    row = publisher.publish_event(name, "shop")
    OutboxEvent.objects.filter(pk=row.pk).update(status=status, created_at=NOW - age)
    return row


def remaining() -> list[str]:
    return sorted(OutboxEvent.objects.values_list("event_type", flat=True))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("12h", timedelta(hours=12)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        (" 7 d ", timedelta(days=7)),
    ],
)
def test_parse_age_reads_a_number_and_a_unit(text: str, expected: timedelta) -> None:
    assert parse_age(text) == expected


@pytest.mark.parametrize(
    ("age", "text"),
    [
        (timedelta(weeks=2), "14d"),
        (timedelta(days=8), "8d"),
        (timedelta(hours=36), "36h"),
        (timedelta(minutes=90), "90m"),
        (timedelta(seconds=61), "61s"),
        (timedelta(), "0s"),
    ],
)
def test_format_age_writes_what_parse_age_reads(age: timedelta, text: str) -> None:
    assert format_age(age) == text
    assert parse_age(text) == age


@pytest.mark.parametrize("text", ["", "7", "d", "7y", "-1d", "1.5h", "7d2h"])
def test_parse_age_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="30m, 12h, 7d"):
        parse_age(text)


def test_only_old_published_events_are_deleted_by_default() -> None:
    event(Status.PUBLISHED, timedelta(days=8), "old-published")
    event(Status.PUBLISHED, timedelta(days=6), "new-published")
    event(Status.FAILED, timedelta(days=8), "old-failed")
    event(Status.PENDING, timedelta(days=30), "old-pending")
    assert delete_old_events(timedelta(days=7), now=NOW) == 1
    assert remaining() == ["new-published", "old-failed", "old-pending"]


def test_include_failed_deletes_old_failed_events_too() -> None:
    event(Status.FAILED, timedelta(days=8), "old-failed")
    event(Status.PENDING, timedelta(days=30), "old-pending")
    assert delete_old_events(timedelta(days=7), include_failed=True, now=NOW) == 1
    assert remaining() == ["old-pending"]


def test_old_events_counts_what_would_go_without_deleting() -> None:
    event(Status.PUBLISHED, timedelta(hours=2))
    event(Status.FAILED, timedelta(hours=2))
    assert old_events(timedelta(hours=1), now=NOW).count() == 1
    assert old_events(timedelta(hours=1), include_failed=True, now=NOW).count() == 2
    assert OutboxEvent.objects.count() == 2


def test_deletes_run_in_batches_of_ids() -> None:
    for n in range(5):
        event(Status.PUBLISHED, timedelta(days=1, minutes=n))
    with CaptureQueriesContext(connection) as queries:
        assert delete_old_events(timedelta(hours=1), batch_size=2, now=NOW) == 5
    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3
    assert not OutboxEvent.objects.exists()


def test_max_batches_stops_early() -> None:
    for n in range(5):
        event(Status.PUBLISHED, timedelta(days=1, minutes=n))
    assert delete_old_events(timedelta(hours=1), batch_size=2, max_batches=2, now=NOW) == 4
    assert OutboxEvent.objects.count() == 1


@pytest.mark.parametrize("limits", [{"batch_size": 0}, {"max_batches": 0}])
def test_limits_must_be_positive(limits: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="batch_size and max_batches must be at least 1"):
        delete_old_events(timedelta(days=1), **limits)


def test_periodic_cleanup_runs_at_once_then_once_per_interval() -> None:
    cleanup = PeriodicCleanup(older_than=timedelta(days=1), interval=timedelta(hours=1))
    event(Status.PUBLISHED, timedelta(days=2))
    assert cleanup.run_if_due(NOW) == 1
    event(Status.PUBLISHED, timedelta(days=2))
    assert cleanup.run_if_due(NOW + timedelta(minutes=59)) == 0
    assert cleanup.run_if_due(NOW + timedelta(hours=1)) == 1


def test_periodic_cleanup_comes_back_at_once_while_old_events_are_left() -> None:
    for n in range(5):
        event(Status.PUBLISHED, timedelta(days=2, minutes=n))
    cleanup = PeriodicCleanup(
        older_than=timedelta(days=1), interval=timedelta(hours=1), batch_size=2, batches_per_run=1
    )
    assert [cleanup.run_if_due(NOW) for _ in range(4)] == [2, 2, 1, 0]
    assert cleanup.next_run == NOW + timedelta(hours=1)


def test_periodic_cleanup_without_an_age_does_nothing() -> None:
    event(Status.PUBLISHED, timedelta(days=2))
    cleanup = PeriodicCleanup(older_than=None, interval=timedelta(hours=1))
    assert cleanup.run_if_due(NOW) == 0
    assert OutboxEvent.objects.count() == 1
