"""The outbox's health in a few queries: what ``manage.py outbox_status`` prints.

:func:`outbox_status` runs five queries whatever the table's size: counts by status, the oldest
due event, the events in flight, the most common failures and, in one aggregate, each
destination's backlog.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Min, Q
from django.utils import timezone

from ..registry import EventRegistry
from .deliveries import Destination, awaiting, configured_destinations
from .models import OutboxEvent, Status


@dataclass(frozen=True)
class FailureReason:
    """One ``last_error`` text shared by ``count`` failed events."""

    reason: str
    count: int


@dataclass(frozen=True)
class DestinationStatus:
    """One destination's backlog: events still to deliver there, pending and failed."""

    name: str
    kind: str
    pending: int
    failed: int


@dataclass(frozen=True)
class OutboxStatus:
    """A snapshot of the outbox at ``now``.

    ``lag`` is how long the oldest due event has been waiting for a worker (``None`` when
    nothing is due): a worker that keeps up keeps it under a poll interval or so.
    """

    now: datetime
    counts: dict[str, int]
    due: int
    in_flight: int
    oldest_due_at: datetime | None
    top_failures: list[FailureReason]
    destinations: list[DestinationStatus]

    @property
    def lag(self) -> timedelta | None:
        """Return how long the oldest due event has been due, or ``None``."""
        return (
            None if self.oldest_due_at is None else max(self.now - self.oldest_due_at, timedelta())
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the snapshot as JSON-ready values (times in ISO 8601, lag in seconds)."""
        values = asdict(self)
        values["now"] = self.now.isoformat()
        values["oldest_due_at"] = self.oldest_due_at and self.oldest_due_at.isoformat()
        values["lag_seconds"] = None if self.lag is None else self.lag.total_seconds()
        return values


def outbox_status(
    *, now: datetime | None = None, top: int = 5, registry: EventRegistry | None = None
) -> OutboxStatus:
    """Return the outbox's state at ``now`` (default: the current time).

    ``top`` limits the failure reasons listed; ``registry`` (default: the global one) gives the
    handlers, listed after the configured backends.
    """
    now = now or timezone.now()
    events = OutboxEvent.objects.all()
    counts = dict.fromkeys((value for value, _ in Status.choices), 0)
    counts.update(events.values_list("status").annotate(n=Count("pk")).order_by())
    due = events.due(now).order_by().aggregate(n=Count("pk"), oldest=Min("scheduled_at"))
    return OutboxStatus(
        now=now,
        counts=counts,
        due=due["n"],
        in_flight=events.in_flight(now).count(),
        oldest_due_at=due["oldest"],
        top_failures=_top_failures(top),
        destinations=_backlogs(configured_destinations(registry)),
    )


def _top_failures(limit: int) -> list[FailureReason]:
    grouped = (
        OutboxEvent.objects.filter(status=Status.FAILED)
        .values_list("last_error")
        .annotate(n=Count("pk"))
        .order_by("-n", "last_error")[:limit]
    )
    return [FailureReason(reason or "(no error recorded)", n) for reason, n in grouped]


def _backlogs(destinations: list[Destination]) -> list[DestinationStatus]:
    if not destinations:
        return []
    counts: dict[str, Any] = {}
    for index, destination in enumerate(destinations):
        for status in (Status.PENDING, Status.FAILED):
            condition = Q(status=status) & awaiting(destination)
            counts[f"{status}_{index}"] = Count("pk", filter=condition)
    totals = (
        OutboxEvent.objects.filter(status__in=[Status.PENDING, Status.FAILED])
        .order_by()
        .aggregate(**counts)
    )
    return [
        DestinationStatus(
            destination.name,
            destination.kind,
            pending=totals[f"{Status.PENDING}_{index}"],
            failed=totals[f"{Status.FAILED}_{index}"],
        )
        for index, destination in enumerate(destinations)
    ]
