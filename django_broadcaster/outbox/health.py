"""The outbox's health in a few queries: what ``manage.py outbox_status`` prints.

:func:`outbox_status` runs six queries: counts by status; over the pending rows only (a partial
index holds them), the due events and the lag, overall and by destination, and the reasons the
tried ones wait; the events in flight; the most common failures and, in one aggregate, each
destination's backlog; with ``DEAD_LETTER`` set, a seventh counts the dead letters. :func:`lags`
runs the lag's query alone, for the worker's progress line.

The *lag* is how long the oldest unfinished event has waited to reach every destination it
needs, deferred, retried or in flight alike: from its ``scheduled_at`` while the worker has
recorded no attempt (when it was published, or the later time it was published for), then from
its ``created_at``, since each retry moves ``scheduled_at``. An event published for later is no
lag before its time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, cast

from django.db.models import Aggregate, Case, Count, F, Min, Q, QuerySet, When
from django.utils import timezone

from ..registry import EventRegistry
from .dead_letters import DeadLetterCount, dead_letter_counts
from .deliveries import Destination, awaiting, configured_destinations
from .models import OutboxEvent, Status


@dataclass(frozen=True)
class FailureReason:
    """One ``last_error`` text shared by ``count`` events (failed ones, or pending ones)."""

    reason: str
    count: int


@dataclass(frozen=True)
class DestinationStatus:
    """One destination's backlog: events still to deliver there, pending and failed, and how
    long the oldest pending one has waited (``None``: none waits)."""

    name: str
    kind: str
    pending: int
    failed: int
    lag: timedelta | None = None


@dataclass(frozen=True)
class OutboxStatus:
    """A snapshot of the outbox at ``now``.

    ``waiting_since`` is when the oldest unfinished event began to wait, and :attr:`lag` how
    long ago that is (see the module; ``None`` when no event waits): a worker that keeps up, with
    its destinations up, keeps it around a poll interval. ``oldest_due_at`` is when the oldest
    due event (pending, its time come, held by no worker) became due. ``waiting_reasons`` says
    why the pending events that were tried wait: a destination unavailable (what failed), or a
    rejection whose retry is to come. ``dead_letters`` counts the failures sent on to a
    ``DEAD_LETTER``, per destination.
    """

    now: datetime
    counts: dict[str, int]
    due: int
    in_flight: int
    oldest_due_at: datetime | None
    top_failures: list[FailureReason]
    destinations: list[DestinationStatus]
    waiting_since: datetime | None = None
    waiting_reasons: list[FailureReason] = field(default_factory=list)
    dead_letters: list[DeadLetterCount] = field(default_factory=list)

    @property
    def lag(self) -> timedelta | None:
        """Return how long the oldest unfinished event has waited, or ``None``."""
        return _age(self.waiting_since, self.now)

    def as_dict(self) -> dict[str, Any]:
        """Return the snapshot as JSON-ready values (times in ISO 8601, lags in seconds)."""
        values = asdict(self)
        for name in ("now", "oldest_due_at", "waiting_since"):
            values[name] = values[name] and values[name].isoformat()
        values["lag_seconds"] = _seconds(self.lag)
        for destination in values["destinations"]:
            destination["lag_seconds"] = _seconds(destination.pop("lag"))
        return values


def outbox_status(
    *, now: datetime | None = None, top: int = 5, registry: EventRegistry | None = None
) -> OutboxStatus:
    """Return the outbox's state at ``now`` (default: the current time).

    ``top`` limits the failure and waiting reasons listed; ``registry`` (default: the global
    one) gives the handlers, listed after the configured backends.
    """
    now = now or timezone.now()
    events = OutboxEvent.objects.all()
    counts = dict.fromkeys((value for value, _ in Status.choices), 0)
    counts.update(events.values_list("status").annotate(n=Count("pk")).order_by())
    destinations = configured_destinations(registry)
    due = Q(scheduled_at__lte=now) & ~Q(leased_until__gt=now)  # as OutboxEvent.objects.due()
    pending = _pending().aggregate(
        due=Count("pk", filter=due),
        oldest_due=Min("scheduled_at", filter=due),
        **lag_aggregates(destinations, now),
    )
    lags = destination_lags(destinations, pending, now)
    return OutboxStatus(
        now=now,
        counts=counts,
        due=pending["due"],
        in_flight=events.in_flight(now).count(),
        oldest_due_at=pending["oldest_due"],
        top_failures=_top_reasons(events.filter(status=Status.FAILED), top),
        destinations=[replace(d, lag=lags[d.name]) for d in _backlogs(destinations)],
        waiting_since=pending["since"],
        waiting_reasons=_top_reasons(_pending().exclude(last_error=""), top),
        dead_letters=dead_letter_counts(_failing(destinations)),
    )


def lags(
    *, now: datetime | None = None, registry: EventRegistry | None = None
) -> tuple[timedelta | None, dict[str, timedelta | None]]:
    """Return the lag at ``now`` (default: the current time), and each destination's.

    The destinations are the configured backends and the handlers of ``registry`` (default: the
    global one); a lag is ``None`` when no event waits. One query, over the pending rows only.
    """
    now = now or timezone.now()
    destinations = configured_destinations(registry)
    pending = _pending().aggregate(**lag_aggregates(destinations, now))
    return _age(pending["since"], now), destination_lags(destinations, pending, now)


def waiting_since() -> Case:
    """Return when an unfinished row began to wait (see the module)."""
    # last_error stays empty until the worker records an attempt that did not finish.
    return Case(When(last_error="", then=F("scheduled_at")), default=F("created_at"))


def _failing(destinations: Sequence[Destination]) -> list[str]:
    """Return the destinations whose failures may have dead letters: none without DEAD_LETTER."""
    if not any(destination.letters_only for destination in destinations):
        return []
    return [destination.name for destination in destinations if not destination.letters_only]


def _pending() -> QuerySet[OutboxEvent]:
    return cast("QuerySet[OutboxEvent]", OutboxEvent.objects.filter(status=Status.PENDING))


def lag_aggregates(destinations: Sequence[Destination], now: datetime) -> dict[str, Aggregate]:
    """Return the pending rows' aggregates: ``since``, then ``since_<i>`` per destination."""
    since = waiting_since()
    waiting = ~Q(last_error="", scheduled_at__gt=now)  # all but those published for later
    aggregates: dict[str, Aggregate] = {"since": Min(since, filter=waiting)}
    for index, destination in enumerate(destinations):
        aggregates[f"since_{index}"] = Min(since, filter=waiting & awaiting(destination))
    return aggregates


def destination_lags(
    destinations: Sequence[Destination], values: dict[str, Any], now: datetime
) -> dict[str, timedelta | None]:
    """Return each destination's lag from the ``values`` of :func:`lag_aggregates`."""
    return {d.name: _age(values[f"since_{index}"], now) for index, d in enumerate(destinations)}


def _age(since: datetime | None, now: datetime) -> timedelta | None:
    return None if since is None else max(now - since, timedelta())


def _seconds(duration: timedelta | None) -> float | None:
    return None if duration is None else duration.total_seconds()


def _top_reasons(events: QuerySet[OutboxEvent], limit: int) -> list[FailureReason]:
    grouped = (
        events.values_list("last_error").annotate(n=Count("pk")).order_by("-n", "last_error")
    )[:limit]
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
