"""What publishing costs the caller: ``publish_event`` against a bare ``create`` of the row,
and the bulk ``publish_events`` against a loop of single publishes.

``publish_event`` and the bare ``create`` take turns inside one transaction, :data:`TURN` events
at a time, so that both write to the same table at the same moments: measured one transaction
after the other, their ratio moved by a quarter between runs on this machine, with the difference
between two transactions rather than between the two calls. The bulk form and the loop each write
the workload in a transaction of their own, commit included. Every figure is the time per event,
measured in this process.
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
#: Events each single-publish case writes before the other takes its turn.
TURN = 50


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


def seconds_taking_turns(count: int) -> dict[str, float]:
    """Return the seconds the bare create and ``publish_event`` each took for ``count`` events.

    Both write ``count`` events in one transaction, taking turns every :data:`TURN` events (or
    ``count``, if smaller), and going first in turn. Raises ``ValueError`` unless ``count`` is a
    whole number of turns.
    """
    turn = min(TURN, count)
    if count % turn:
        raise ValueError(f"{count} events are not a whole number of turns of {turn}")
    empty_outbox()
    spent = dict.fromkeys(SINGLE_CASES, 0.0)
    order = list(SINGLE_CASES.items())
    with transaction.atomic():
        for _ in range(count // turn):
            for name, write in order:
                started = time.perf_counter()
                write(turn)
                spent[name] += time.perf_counter() - started
            order.reverse()
    return spent


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
    rounds = scale.rounds + 2
    turns = [seconds_taking_turns(count) for _ in range(rounds)]
    cost = {name: min(spent[name] for spent in turns) * 1e6 / count for name in SINGLE_CASES}
    rates = best_of(
        rounds,
        {name: (lambda w=write: events_per_s(w, count)) for name, write in BULK_CASES.items()},
        higher_is_better=True,
    )
    return [
        Figure(
            "publish_event cost",
            cost["publish_event"],
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


SINGLE_CASES: dict[str, Callable[[int], None]] = {
    "create": create_rows,
    "publish_event": publish_each,
}
BULK_CASES: dict[str, Callable[[int], None]] = {"each": publish_each, "bulk": publish_bulk}
