"""``manage.py outbox_worker``: arguments, help, and the summary it prints."""

import gc
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher
from django_broadcaster.worker.gc_tuning import YOUNG_THRESHOLD

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("garbage_collector_restored"),  # the command tunes the collector
]


def test_burst_with_0_1_arguments() -> None:
    for n in range(3):
        publisher.publish_event("t", "s", {"n": n})
    out = StringIO()
    call_command("outbox_worker", "--burst", "--batch-size", "2", "--interval", "0", stdout=out)
    assert "Published 3, retried 0, deferred 0, failed 0, expired 0 in 2 batches." in out.getvalue()
    assert OutboxEvent.objects.filter(status=Status.PUBLISHED).count() == 3


def test_the_command_tunes_the_garbage_collector_for_its_loop() -> None:
    frozen = gc.get_freeze_count()  # not 0 on Python 3.12, which freezes some objects itself
    call_command("outbox_worker", "--burst", "--interval", "0", stdout=StringIO())
    assert gc.get_freeze_count() > frozen
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD


def test_max_iterations_stops_a_non_burst_worker() -> None:
    out = StringIO()
    call_command("outbox_worker", "--max-iterations", "1", "--interval", "0", stdout=out)
    assert "in 0 batches" in out.getvalue()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--interval", "-1"], "--interval: must be a number of seconds, 0 or more"),
        (["--max-iterations", "-2"], "--max-iterations must not be negative"),
    ],
)
def test_bad_arguments_are_refused(argv: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("outbox_worker", *argv)


def test_help_describes_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        call_command("outbox_worker", "--help")
    text = capsys.readouterr().out
    for option in ("--batch-size N", "--interval SECONDS", "--max-iterations N", "--burst"):
        assert option in text
    assert "SIGTERM" in text
