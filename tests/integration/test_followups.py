"""A handler's follow-up events commit with the record of its success, so they are never doubled."""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from django_broadcaster.backends import create_backends
from django_broadcaster.conf import get_settings
from django_broadcaster.events import CloudEvent
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.outbox import leases
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry
from django_broadcaster.worker import Worker
from django_broadcaster.worker.delivery import couriers_for, deliver
from harness.polling import poll
from tests.workers import start_worker

pytestmark = pytest.mark.django_db(transaction=True)
LEASE = get_settings().lease_duration
#: The worker subprocess loads the drills' handlers (``tests/faults/handlers.py``).
DRILL_APP = {"TEST_EXTRA_APPS": '["tests.faults"]'}
RETURNS_TYPE = "drill.order_paid"  # tests.faults.handlers.RETURNS_TYPE, not imported here:
HANDLER = "handler:tests.faults.handlers.order_paid"  # importing would register its handlers


def registry_with_follow_up() -> EventRegistry:
    registry = EventRegistry()

    @registry.register("order.created")
    def send_invoice(event: CloudEvent) -> None:
        publisher.publish_event("invoice.requested", "billing", {"order": event.data["order"]})

    return registry


def test_a_dead_workers_handler_is_not_run_again() -> None:
    order = publisher.publish_event("order.created", "shop", {"order": 1})
    registry = registry_with_follow_up()

    claim = leases.claim(10, LEASE)  # this worker runs the handler, then dies
    backends = create_backends()
    deliver(claim.rows, couriers_for(backends, get_settings()), registry)
    order.refresh_from_db()
    # Recorded in the handler's own transaction; backends are recorded with the batch.
    assert order.delivered == [
        "handler:tests.integration.test_followups.registry_with_follow_up.<locals>.send_invoice",
    ]

    lease_over = timezone.now() - timedelta(seconds=1)
    OutboxEvent.objects.filter(pk=order.pk).update(leased_until=lease_over)
    Worker(config=get_settings(), registry=registry, burst=True).run()

    assert OutboxEvent.objects.filter(event_type="invoice.requested").count() == 1
    assert OutboxEvent.objects.get(pk=order.pk).status == Status.PUBLISHED


def test_follow_ups_roll_back_when_the_lease_is_lost() -> None:
    publisher.publish_event("order.created", "shop", {"order": 2})
    claim = leases.claim(10, LEASE)
    OutboxEvent.objects.update(lease_token=None)  # another worker took the event over
    backends = create_backends()
    [outcome] = deliver(
        claim.rows, couriers_for(backends, get_settings()), registry_with_follow_up()
    )
    assert "LeaseLost" in next(iter(outcome.errors.values()))
    assert not OutboxEvent.objects.filter(event_type="invoice.requested").exists()


def test_returned_follow_ups_are_not_doubled_after_a_sigkill(tmp_path: Path) -> None:
    """A real worker runs a handler that returns an event and a command, then is killed while
    the batch waits for its backend; the next worker runs nothing of it again."""
    publisher.publish_event(RETURNS_TYPE, "drill", {"order": 1, "sku": "tea"})
    os.mkfifo(tmp_path / "gate")  # never opened: the batch waits there until the kill
    gate = {"BACKEND": "tests.doubles.GateBackend", "OPTIONS": {"directory": str(tmp_path)}}
    held = {"SEND_DEADLINE": 600, "LEASE_DURATION": 1}
    with start_worker(backends={"gate": gate}, settings=held, env=DRILL_APP) as worker:
        poll((tmp_path / "started").exists, 30, "the worker to hold a batch")
        poll(lambda: follow_ups() == ["drill.receipt", "drill.restock"], 30, "the handler's run")
        worker.kill()
    [paid] = OutboxEvent.objects.filter(event_type=RETURNS_TYPE)
    assert paid.status == Status.PENDING and paid.delivered == [HANDLER]

    poll(nothing_held, 30, "the dead worker's leases to run out")  # till then, nothing is due
    locmem = {"BACKEND": "django_broadcaster.backends.LocMemBackend"}
    with start_worker("--burst", backends={"default": locmem}, env=DRILL_APP) as worker:
        assert worker.wait() == 0, worker.output()

    assert follow_ups() == ["drill.receipt", "drill.restock", "drill.restocked"]
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {Status.PUBLISHED}


def nothing_held() -> bool:
    return not OutboxEvent.objects.in_flight(timezone.now()).exists()


def follow_ups() -> list[str]:
    rows = OutboxEvent.objects.exclude(event_type=RETURNS_TYPE)
    return sorted(rows.values_list("event_type", flat=True))
