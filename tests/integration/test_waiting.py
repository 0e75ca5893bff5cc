"""Events waiting for a paused backend stay out of the way until it is back, then go at once.

Found by the outage drill (tests/faults/test_broker_outage.py): when every waiting event came back
at each pause's end, the pile was claimed and deferred again ahead of newer events, and the
healthy destination heard nothing for seconds at a time.
"""

from dataclasses import replace
from datetime import timedelta

import pytest
from django.utils import timezone

from django_broadcaster.backends import LocMemBackend, locmem
from django_broadcaster.conf import get_settings
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry
from django_broadcaster.retry import HELD_PAUSES
from django_broadcaster.worker import Worker
from tests.doubles import RejectingBackend, UnavailableBackend

pytestmark = pytest.mark.django_db(transaction=True)

#: Long enough that no pause ends by itself during a test, however slow the machine.
PAUSE = timedelta(seconds=60)


def make_worker(**backends: object) -> Worker:
    """Return a worker of batches of 2, in line, whose breakers pause for ``PAUSE``."""
    config = replace(
        get_settings(), batch_size=2, breaker_base_delay=PAUSE, breaker_max_delay=PAUSE
    )
    return Worker(config=config, registry=EventRegistry(), backends=backends, overlap=False)


def pending_due_by(moment: object) -> int:
    return OutboxEvent.objects.filter(status=Status.PENDING, scheduled_at__lte=moment).count()


def test_only_the_trials_events_are_due_when_the_pause_ends() -> None:
    down = UnavailableBackend("down")
    for n in range(6):
        publisher.publish_event("t", "s", {"n": n})
    worker = make_worker(good=LocMemBackend("good"), down=down)
    for _ in range(3):  # the first batch is tried and fails; the next two find the breaker open
        worker.run_once()
    open_until = worker.breakers["down"].open_until
    assert open_until is not None
    assert len(down.calls) == 1 and len(locmem.outbox) == 6
    assert pending_due_by(open_until) == 2  # the pile does not come back with the trial
    # ...but comes back by itself, should no worker see the backend come back
    assert pending_due_by(open_until + PAUSE * HELD_PAUSES) == 6


def test_a_successful_call_wakes_the_events_waiting_for_the_backend() -> None:
    down = UnavailableBackend("down")
    rows = [publisher.publish_event("t", "s", {"n": n}) for n in range(6)]
    worker = make_worker(good=LocMemBackend("good"), down=down)
    for _ in range(3):
        worker.run_once()
    down.down = False
    breaker = worker.breakers["down"]
    assert breaker.open_until is not None
    # The pause is over: the events of the failed call are due, and make the trial.
    OutboxEvent.objects.filter(scheduled_at__lte=breaker.open_until).update(
        scheduled_at=timezone.now()
    )
    breaker.open_until = timezone.now()
    newer = publisher.publish_event("t", "s", {"n": 6})
    assert worker.run_once().published == 2  # the trial succeeds: the backend is back
    for _ in range(3):
        worker.run_once()  # the woken pile, 2 by 2, though its own wait has not ended
    for row in [*rows, newer]:
        row.refresh_from_db()
        assert (row.status, row.retry_count) == (Status.PUBLISHED, 0)
    assert len(locmem.outbox) == 7  # the healthy backend got each event once


def test_a_wake_never_brings_a_refused_events_retry_forward() -> None:
    down, picky = UnavailableBackend("down"), RejectingBackend("picky")
    publisher.publish_event("t", "s", {"n": 0})
    refused = publisher.publish_event("t", "s", {"n": 1, "reject": True})
    worker = make_worker(down=down, picky=picky)
    worker.run_once()  # down is tried and fails; picky refuses one event
    worker.breakers["down"].open_until = timezone.now()
    down.down = False
    retry_at = OutboxEvent.objects.get(pk=refused.pk).scheduled_at
    OutboxEvent.objects.exclude(pk=refused.pk).update(scheduled_at=timezone.now())
    worker.run_once()  # the trial succeeds and wakes what waits for down
    refused.refresh_from_db()
    assert (refused.status, refused.retry_count) == (Status.PENDING, 1)
    assert refused.scheduled_at == retry_at
