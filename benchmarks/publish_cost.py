"""What publishing costs the caller: ``publish_event`` against a bare ``create`` of the row,
and the bulk ``publish_events`` against a loop of single publishes.

Each case writes the same number of workload events inside one transaction, which commits; the
figure is the time per event, start to commit, measured in this process.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.db import transaction

from django_broadcaster.events import CloudEvent
from django_broadcaster.models import OutboxEvent
from django_broadcaster.publishers import publisher

from .database import empty_outbox
from .report import Figure, Goal
from .rounds import best_of
from .scale import Scale
from .workload import EVENT_TYPE, SOURCE, payload

DATA = payload()


def create_rows(count: int) -> None:
    """Write ``count`` outbox rows with ``OutboxEvent.objects.create`` (the bare reference)."""
    for _ in range(count):
        OutboxEvent.objects.create(event_type=EVENT_TYPE, source=SOURCE, data=DATA)


def publish_each(count: int) -> None:
    """Write ``count`` events with one ``publish_event`` call each."""
    for _ in range(count):
        publisher.publish_event(EVENT_TYPE, SOURCE, DATA)


def publish_bulk(count: int) -> None:
    """Write ``count`` events with one ``publish_events`` call."""
    publisher.publish_events(CloudEvent(EVENT_TYPE, SOURCE, DATA) for _ in range(count))


def events_per_s(write: Callable[[int], None], count: int) -> float:
    """Return events per second for ``write(count)`` in one transaction, commit included."""
    empty_outbox()
    started = time.perf_counter()
    with transaction.atomic():
        write(count)
    return count / (time.perf_counter() - started)


def measure(scale: Scale) -> list[Figure]:
    """Return publish_event's cost over a bare create, and bulk publishing's speed-up."""
    count = scale.publish_events
    rates = best_of(
        scale.rounds + 2,
        {name: (lambda w=write: events_per_s(w, count)) for name, write in CASES.items()},
        higher_is_better=True,
    )
    cost = {name: 1e6 / rate for name, rate in rates.items()}
    return [
        Figure(
            "publish_event cost",
            cost["each"],
            "µs/ev",
            cost["create"],
            "bare create",
            Goal("<=", 1.2),
        ),
        Figure(
            "publish_events (bulk)",
            rates["bulk"],
            "ev/s",
            rates["each"],
            "loop of publish_event",
            Goal(">=", 5),
        ),
    ]


CASES: dict[str, Callable[[int], None]] = {
    "create": create_rows,
    "each": publish_each,
    "bulk": publish_bulk,
}
