"""``manage.py outbox_requeue``: chooses events by id, group, type, source, destination, time
and status, says how many match, and changes nothing without ``--yes``."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.outbox.failures import failure_groups
from django_broadcaster.publishers import publisher

pytestmark = pytest.mark.django_db


def fail(*rows: OutboxEvent, at: str = "redis", error: str = "EventRejected: too big") -> None:
    entry = {"state": "rejected", "attempts": 5, "at": "2026-12-07T10:00:00Z", "error": error}
    OutboxEvent.objects.filter(pk__in=[r.pk for r in rows]).update(
        status=Status.FAILED, retry_count=4, last_error=f"{at}: {error}", delivery={at: entry}
    )


def run(*argv: str) -> str:
    out = StringIO()
    call_command("outbox_requeue", *argv, stdout=out)
    return out.getvalue()


def statuses() -> dict[str, int]:
    rows = OutboxEvent.objects.values_list("status", flat=True)
    return {status: list(rows).count(status) for status in set(rows)}


def test_without_yes_it_counts_changes_nothing_and_fails() -> None:
    a, b = publisher.publish_event("a", "s"), publisher.publish_event("b", "s")
    fail(a, b)
    with pytest.raises(CommandError, match="pass --yes to act on these 2 events"):
        run()
    assert run("--dry-run") == "2 events match.\n"
    assert statuses() == {Status.FAILED: 2}


def test_yes_requeues_every_failed_event_by_default_with_retries_restored() -> None:
    a, b = publisher.publish_event("a", "s"), publisher.publish_event("b", "s")
    published = publisher.publish_event("c", "s")
    fail(a, b)
    OutboxEvent.objects.filter(pk=published.pk).update(status=Status.PUBLISHED)
    assert run("--yes") == "2 events match.\nRequeued 2 events.\n"
    assert set(OutboxEvent.objects.due(timezone.now())) == {a, b}
    requeued = OutboxEvent.objects.filter(pk__in=[a.pk, b.pk])
    assert set(requeued.values_list("retry_count", flat=True)) == {0}
    assert OutboxEvent.objects.get(pk=published.pk).status == Status.PUBLISHED


def test_nothing_matching_is_not_an_error() -> None:
    assert run() == "0 events match.\n"


def test_a_group_chooses_the_events_with_that_failure_only() -> None:
    rows = [publisher.publish_event("order.paid", "s") for _ in range(4)]
    fail(rows[0], error="EventRejected: order 12 missing")
    fail(rows[1], error="EventRejected: order 345 missing")
    fail(rows[2], error="ValueError: order 12 missing")
    fail(rows[3], at="kafka", error="EventRejected: order 12 missing")
    groups = {(g.kind.destination, g.kind.error_class): g for g in failure_groups()}
    fingerprint = groups["redis", "EventRejected"].fingerprint
    assert run("--group", fingerprint, "--yes").startswith("2 events match.\n")
    assert set(OutboxEvent.objects.filter(status=Status.PENDING)) == {rows[0], rows[1]}


def test_type_source_destination_and_time_narrow_the_choice() -> None:
    a, b, c = (publisher.publish_event(t, "s") for t in ("a", "b", "b"))
    d = publisher.publish_event("b", "elsewhere")
    fail(a, b, d)
    fail(c, at="kafka")
    assert run("--type", "b", "--dry-run") == "3 events match.\n"
    assert run("--type", "b", "--source", "s", "--dry-run") == "2 events match.\n"
    assert run("--destination", "kafka", "--dry-run") == "1 events match.\n"
    OutboxEvent.objects.filter(pk=a.pk).update(created_at=timezone.now() - timedelta(days=2))
    yesterday = (timezone.now() - timedelta(days=1)).isoformat()
    assert run("--since", yesterday, "--dry-run") == "3 events match.\n"
    assert run("--until", yesterday, "--dry-run") == "1 events match.\n"
    assert run(str(a.id), "--yes") == "1 events match.\nRequeued 1 events.\n"


def test_status_pending_makes_waiting_events_due_now() -> None:
    waiting, failed = publisher.publish_event("a", "s"), publisher.publish_event("a", "s")
    later = timezone.now() + timedelta(hours=1)
    OutboxEvent.objects.filter(pk=waiting.pk).update(scheduled_at=later, retry_count=2)
    fail(failed)
    assert run("--status", "pending", "--dry-run") == "1 events match.\n"
    assert run("--status", "pending", "--status", "failed", "--yes").startswith("2 events")
    assert set(OutboxEvent.objects.due(timezone.now())) == {waiting, failed}


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["order-7"], "not an event id"),
        (["--group", "xyz"], "not a failure group's fingerprint"),
        (["--status", "published"], "invalid choice: 'published'"),
        (["--status", "expired"], "invalid choice: 'expired'"),
        (["--since", "yesterday"], "must be an ISO 8601 date"),
        (["--since", "2026-12-08", "--until", "2026-12-07"], "must be before --until"),
        (["--yes", "--dry-run"], "not allowed with argument"),
    ],
)
def test_refuses_bad_arguments_naming_the_problem(argv: list[str], problem: str) -> None:
    with pytest.raises(CommandError, match=problem):
        run(*argv)
