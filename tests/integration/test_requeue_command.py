"""``manage.py outbox_requeue`` puts failed events back to pending."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher

pytestmark = pytest.mark.django_db


def fail(*rows: OutboxEvent) -> None:
    OutboxEvent.objects.filter(pk__in=[r.pk for r in rows]).update(
        status=Status.FAILED, retry_count=4, last_error="redis: EventRejected: too big"
    )


def run(*argv: str) -> str:
    out = StringIO()
    call_command("outbox_requeue", *argv, stdout=out)
    return out.getvalue()


def test_requeues_every_failed_event_by_default() -> None:
    a, b = publisher.publish_event("a", "s"), publisher.publish_event("b", "s")
    published = publisher.publish_event("c", "s")
    fail(a, b)
    OutboxEvent.objects.filter(pk=published.pk).update(status=Status.PUBLISHED)
    assert run() == "Requeued 2 failed events.\n"
    assert set(OutboxEvent.objects.due(timezone.now())) == {a, b}
    assert set(
        OutboxEvent.objects.filter(pk__in=[a.pk, b.pk]).values_list("retry_count", flat=True)
    ) == {0}
    assert OutboxEvent.objects.get(pk=published.pk).status == Status.PUBLISHED


def test_filters_and_dry_run() -> None:
    a, b, c = (publisher.publish_event(t, "s") for t in ("a", "b", "b"))
    fail(a, b, c)
    assert run("--type", "b", "--dry-run") == "Would requeue 2 failed events.\n"
    assert OutboxEvent.objects.filter(status=Status.FAILED).count() == 3
    assert run(str(a.id)) == "Requeued 1 failed events.\n"
    assert run("--source", "elsewhere") == "Requeued 0 failed events.\n"


def test_refuses_a_bad_id() -> None:
    with pytest.raises(CommandError, match="not an event id"):
        run("order-7")
