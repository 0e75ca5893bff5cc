"""The dashboard's figures: where each destination stands, the failure groups, the last hour.

Each query reads the pending rows (the partial index ``outbox_due_idx`` holds them), the failed
rows (``outbox_failed_idx``) or the last hour's published rows (``outbox_published_idx``), so
its cost follows the unfinished rows and the last hour's, not the history the outbox keeps.

Workers keep their circuit breakers in memory and report them nowhere another process could
read, so a destination's state is told from what the rows say: it is *failing* when the latest
attempt recorded there (on a pending row, or a failed one's) is later than the latest delivery
recorded there (on a pending row, or a published one of the last hour). A worker defers the
events of a destination whose breaker is open: those are the *deferred* ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from django.db.models import Count, Max, Q
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import TruncMinute
from django.db.models.lookups import In
from django.utils import timezone

from ..events import parse_timestamp
from ..fingerprints import FailureGroup
from ..outbox.deliveries import (
    NOT_REACHED,
    Destination,
    awaiting,
    bound_for,
    configured_destinations,
)
from ..outbox.failures import COLUMNS, group_rows
from ..outbox.health import destination_lags, lag_aggregates
from ..outbox.models import DestinationState, OutboxEvent, Status

HOUR: Final = timedelta(hours=1)
#: The failure groups are made from at most this many failed events, the latest first.
FAILED_ROWS_READ: Final = 5000


@dataclass(frozen=True)
class DestinationHealth:
    """One destination: events waiting for it, the oldest one's wait, how many are deferred,
    and the latest delivery and failure the rows record there (``None``: none recorded)."""

    name: str
    kind: str
    backlog: int
    deferred: int
    oldest_wait: timedelta | None
    last_delivery: datetime | None
    last_failure: datetime | None

    @property
    def waited(self) -> str:
        """Return :attr:`oldest_wait` for people (``45 s``, ``3 min 12 s``, ``2 h 5 min``), or
        ``""`` when no event waits."""
        return "" if self.oldest_wait is None else duration(self.oldest_wait)

    @property
    def failing(self) -> bool:
        """Return whether the latest attempt recorded at the destination failed."""
        if self.last_failure is None:
            return False
        return self.last_delivery is None or self.last_failure > self.last_delivery


@dataclass(frozen=True)
class Minute:
    """How many events were published, and how many failed, in the minute from ``start``."""

    start: datetime
    published: int
    failed: int


@dataclass(frozen=True)
class Dashboard:
    """What the dashboard shows at ``now``.

    ``failures`` are made from the latest ``failed_read`` of the ``failed_total`` failed
    events; ``minutes`` are the last hour's, oldest first, the current minute last.
    """

    now: datetime
    destinations: list[DestinationHealth]
    failures: list[FailureGroup]
    failed_total: int
    failed_read: int
    minutes: list[Minute]


def dashboard(now: datetime | None = None) -> Dashboard:
    """Return the dashboard at ``now`` (default: the current time), in at most seven queries."""
    now = now or timezone.now()
    destinations = configured_destinations()
    failed = OutboxEvent.objects.filter(status=Status.FAILED)
    rows = list(failed.order_by("-scheduled_at").values_list(*COLUMNS)[:FAILED_ROWS_READ])
    return Dashboard(
        now=now,
        destinations=_health(destinations, now),
        failures=group_rows(rows),
        failed_total=len(rows) if len(rows) < FAILED_ROWS_READ else failed.count(),
        failed_read=len(rows),
        minutes=_minutes(now),
    )


def duration(span: timedelta) -> str:
    """Return ``span`` in its two largest units: ``45 s``, ``3 min 12 s``, ``2 h 0 min``."""
    seconds = int(span.total_seconds())
    units = [("d", 86400), ("h", 3600), ("min", 60), ("s", 1)]
    first = next(index for index, (_, size) in enumerate(units) if seconds >= size or size == 1)
    parts = []
    for unit, size in units[first : first + 2]:
        parts.append(f"{seconds // size} {unit}")
        seconds %= size
    return " ".join(parts)


def _health(destinations: Sequence[Destination], now: datetime) -> list[DestinationHealth]:
    if not destinations:
        return []
    pending = OutboxEvent.objects.filter(status=Status.PENDING).order_by()
    figures = pending.aggregate(
        **_pending_aggregates(destinations), **lag_aggregates(destinations, now)
    )
    waits = destination_lags(destinations, figures, now)  # one pass over pending rows for both
    failed = OutboxEvent.objects.filter(status=Status.FAILED).order_by()
    figures |= failed.aggregate(**_latest(destinations, "failed_", NOT_REACHED, "failure_"))
    recent = OutboxEvent.objects.filter(status=Status.PUBLISHED, published_at__gte=now - HOUR)
    published = {
        f"published_{index}": Max("published_at", filter=bound_for(destination))
        for index, destination in enumerate(destinations)
    }
    figures |= recent.order_by().aggregate(**published)
    return [
        DestinationHealth(
            name=destination.name,
            kind=destination.kind,
            backlog=figures[f"backlog_{index}"],
            deferred=figures[f"deferred_{index}"],
            oldest_wait=waits.get(destination.name),
            last_delivery=_latest_of(figures, index, "delivery_", "published_"),
            last_failure=_latest_of(figures, index, "failure_", "failed_failure_"),
        )
        for index, destination in enumerate(destinations)
    ]


def _pending_aggregates(destinations: Sequence[Destination]) -> dict[str, Any]:
    unavailable = (str(DestinationState.UNAVAILABLE),)
    aggregates: dict[str, Any] = {
        **_latest(destinations, "", NOT_REACHED, "failure_"),
        **_latest(destinations, "", (str(DestinationState.DELIVERED),), "delivery_"),
    }
    for index, destination in enumerate(destinations):
        aggregates[f"backlog_{index}"] = Count("pk", filter=awaiting(destination))
        deferred = In(_entry_field(destination, "state"), list(unavailable))
        aggregates[f"deferred_{index}"] = Count("pk", filter=Q(deferred))
    return aggregates


def _latest(
    destinations: Sequence[Destination], prefix: str, states: Sequence[str], name: str
) -> dict[str, Any]:
    """Return aggregates ``{prefix}{name}{index}``: the latest ``at`` of entries in ``states``."""
    aggregates: dict[str, Any] = {}
    for index, destination in enumerate(destinations):
        in_state = Q(In(_entry_field(destination, "state"), list(states)))
        aggregates[f"{prefix}{name}{index}"] = Max(_entry_field(destination, "at"), filter=in_state)
    return aggregates


def _entry_field(destination: Destination, key: str) -> KeyTextTransform:
    return KeyTextTransform(key, KeyTransform(destination.name, "delivery"))


def _latest_of(figures: dict[str, Any], index: int, *names: str) -> datetime | None:
    """Return the latest of the figures ``{name}{index}`` (RFC 3339 text or datetimes)."""
    values = [figures[f"{name}{index}"] for name in names]
    times = [parse_timestamp(v) if isinstance(v, str) else v for v in values if v]
    return max(times, default=None)


def _minutes(now: datetime) -> list[Minute]:
    first = now.replace(second=0, microsecond=0) - timedelta(minutes=59)
    published = _per_minute(Status.PUBLISHED, "published_at", first)
    failed = _per_minute(Status.FAILED, "scheduled_at", first)
    starts = [first + timedelta(minutes=n) for n in range(60)]
    return [Minute(start, published.get(start, 0), failed.get(start, 0)) for start in starts]


def _per_minute(status: str, column: str, first: datetime) -> dict[datetime, int]:
    rows = OutboxEvent.objects.filter(**{"status": status, f"{column}__gte": first})
    counted = (
        rows.annotate(minute=TruncMinute(column)).values_list("minute").annotate(n=Count("pk"))
    )
    return dict(counted.order_by())
