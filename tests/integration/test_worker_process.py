"""The real ``outbox_worker`` command, as a subprocess: signals, burst mode, several workers."""

import os
import signal
from pathlib import Path

import pytest
from django.utils import timezone

from django_broadcaster.events import CloudEvent
from django_broadcaster.outbox.models import RELEASED, OutboxEvent, Status
from django_broadcaster.publishers import publisher
from harness.polling import poll
from tests.workers import start_worker

pytestmark = pytest.mark.django_db(transaction=True)

#: The gate holds a batch for as long as a test wants: no deadline may give up on it first.
PATIENT = {"SEND_DEADLINE": 600}


def test_sigterm_finishes_and_records_the_batch_in_hand_then_exits_0(tmp_path: Path) -> None:
    publisher.publish_events([CloudEvent("t", "s", {"n": n}) for n in range(30)])
    os.mkfifo(tmp_path / "gate")
    gate = {"BACKEND": "tests.doubles.GateBackend", "OPTIONS": {"directory": str(tmp_path)}}
    with start_worker(
        "--batch-size", "10", "--interval", "0", backends={"gate": gate}, settings=PATIENT
    ) as worker:
        poll((tmp_path / "started").exists, 30, "the worker to start a batch")
        worker.send_signal(signal.SIGTERM)
        (tmp_path / "gate").write_text("go")  # let the batch in hand complete
        assert worker.wait() == 0, worker.output()

    delivered = (tmp_path / "delivered").read_text().split()
    assert len(delivered) == 10
    published = set(
        OutboxEvent.objects.filter(status=Status.PUBLISHED).values_list("id", flat=True)
    )
    assert {str(pk) for pk in published} == set(delivered)
    assert OutboxEvent.objects.filter(status=Status.PENDING).count() == 20
    assert not OutboxEvent.objects.exclude(**RELEASED).exists()


def test_burst_mode_delivers_everything_due_and_exits_0() -> None:
    publisher.publish_events([CloudEvent("t", "s", {"n": n}) for n in range(25)])
    locmem = {"BACKEND": "django_broadcaster.backends.LocMemBackend"}
    with start_worker("--burst", "--batch-size", "10", backends={"default": locmem}) as worker:
        assert worker.wait() == 0, worker.output()
        output = worker.output()
    assert "Published 25, retried 0, deferred 0, failed 0, expired 0 in 3 batches." in output
    assert OutboxEvent.objects.filter(status=Status.PUBLISHED).count() == 25


def test_a_batch_that_overstays_the_grace_period_is_released(tmp_path: Path) -> None:
    publisher.publish_events([CloudEvent("t", "s", {"n": n}) for n in range(30)])
    os.mkfifo(tmp_path / "gate")  # never opened by the test: the batch hangs
    gate = {"BACKEND": "tests.doubles.GateBackend", "OPTIONS": {"directory": str(tmp_path)}}
    with start_worker(
        "--batch-size", "10", backends={"gate": gate}, settings={**PATIENT, "SHUTDOWN_TIMEOUT": 0.5}
    ) as worker:
        poll((tmp_path / "started").exists, 30, "the worker to start a batch")
        assert worker.stop(timeout=30) == 0, worker.output()

    assert "Released 10 claimed events." in worker.output()
    assert not OutboxEvent.objects.exclude(**RELEASED).exists()
    assert OutboxEvent.objects.due(timezone.now()).count() == 30
    assert set(OutboxEvent.objects.values_list("retry_count", flat=True)) == {0}


def test_a_second_signal_stops_at_once_and_releases_the_batch(tmp_path: Path) -> None:
    publisher.publish_events([CloudEvent("t", "s", {"n": n}) for n in range(5)])
    os.mkfifo(tmp_path / "gate")
    gate = {"BACKEND": "tests.doubles.GateBackend", "OPTIONS": {"directory": str(tmp_path)}}
    with start_worker("--batch-size", "10", backends={"gate": gate}, settings=PATIENT) as worker:
        poll((tmp_path / "started").exists, 30, "the worker to start a batch")
        worker.send_signal(signal.SIGTERM)
        worker.send_signal(signal.SIGINT)
        assert worker.wait(timeout=30) == 0, worker.output()

    assert OutboxEvent.objects.due(timezone.now()).count() == 5
