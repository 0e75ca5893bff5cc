"""A handler's follow-up events commit with the record of its success, so they are never doubled."""

from datetime import timedelta

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

pytestmark = pytest.mark.django_db(transaction=True)
LEASE = get_settings().lease_duration


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
