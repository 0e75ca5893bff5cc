"""``manage.py outbox_cleanup`` parses an age and deletes or counts old events."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher

pytestmark = pytest.mark.django_db


def old(status: str, days: int = 8) -> None:
    row = publisher.publish_event("e", "shop")
    created = timezone.now() - timedelta(days=days)
    OutboxEvent.objects.filter(pk=row.pk).update(status=status, created_at=created)


def cleanup(*args: str) -> str:
    out = StringIO()
    call_command("outbox_cleanup", *args, stdout=out)
    return out.getvalue()


def test_deletes_published_events_older_than_the_age() -> None:
    old(Status.PUBLISHED)
    old(Status.PUBLISHED, days=1)
    old(Status.FAILED)
    output = cleanup("--older-than", "7d")
    assert output == "Deleted 1 published events older than 7d.\n"
    assert OutboxEvent.objects.count() == 2


def test_include_failed_and_batch_size() -> None:
    old(Status.PUBLISHED)
    old(Status.FAILED)
    output = cleanup("--older-than", "12h", "--include-failed", "--batch-size", "1")
    assert output.startswith("Deleted 2 published or failed events older than 12h")
    assert not OutboxEvent.objects.exists()


def test_dry_run_only_counts() -> None:
    old(Status.PUBLISHED)
    assert cleanup("--older-than", "30m", "--dry-run").startswith("Would delete 1 published")
    assert OutboxEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--older-than", "7y"], "'7y' is not an age"),
        (["--older-than", "7d", "--batch-size", "0"], "--batch-size must be at least 1"),
        ([], "--older-than"),
    ],
)
def test_bad_arguments_are_refused(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        cleanup(*args)
