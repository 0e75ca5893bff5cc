"""The outbox's failure groups: failed events grouped by fingerprint, and the events of a group.

Each destination of an event that refused it or could not be reached (its ``delivery`` entry
``rejected`` or ``unavailable``) is one failure, grouped by
:func:`~django_broadcaster.fingerprints.failure_kind` of the destination and the entry's error.
An event that failed at two destinations is in two groups. A failed event whose ``delivery``
names no such destination (set failed by hand, or by an older version) is grouped under no
destination, by its ``last_error``. The admin, ``outbox_status --failures`` and
``outbox_requeue --group`` read the groups from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, Final, cast
from uuid import UUID

from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.lookups import In

from ..events import parse_timestamp
from ..fingerprints import Failure, FailureGroup, failure_kind, group
from .deliveries import NOT_REACHED
from .models import OutboxEvent, OutboxEventQuerySet, Status

#: The columns a failure is read from: the id, ``delivery``, ``last_error`` and a fallback time.
COLUMNS: Final = ("pk", "delivery", "last_error", "scheduled_at")
#: Rows are read from the database this many at a time.
CHUNK: Final = 2000


def failures_of(row: tuple[Any, Any, str, datetime]) -> Iterator[Failure]:
    """Yield the failures of one row, given as its :data:`COLUMNS` values."""
    pk, delivery, last_error, fallback = row
    found = False
    for name, entry in _entries(delivery):
        if entry.get("state") in NOT_REACHED:
            found = True
            error, at = str(entry.get("error", "")), entry.get("at")
            when = parse_timestamp(at) if isinstance(at, str) else fallback
            yield Failure(failure_kind(name, error), str(pk), error, when)
    if not found:
        yield Failure(failure_kind("", last_error), str(pk), last_error, fallback)


def failure_groups(events: QuerySet[OutboxEvent] | None = None) -> list[FailureGroup]:
    """Return the groups of ``events`` (default: every failed event), the largest first."""
    return group_rows(_rows(_failed() if events is None else events))


def group_rows(rows: Iterable[tuple[Any, Any, str, datetime]]) -> list[FailureGroup]:
    """Return the failure groups of ``rows`` (:data:`COLUMNS` values), the largest first."""
    return group(failure for row in rows for failure in failures_of(row))


def in_group(events: QuerySet[OutboxEvent], fingerprint: str) -> list[UUID]:
    """Return the ids of ``events`` with a failure of the group ``fingerprint``."""
    return [
        row[0]
        for row in _rows(events)
        if any(f.kind.fingerprint == fingerprint for f in failures_of(row))
    ]


def group_events(fingerprint: str) -> OutboxEventQuerySet:
    """Return the failed events with a failure of the group ``fingerprint``."""
    return cast(OutboxEventQuerySet, _failed().filter(pk__in=in_group(_failed(), fingerprint)))


def not_delivered_at(destination: str) -> Q:
    """Return the condition: ``destination`` refused the event or could not be reached (a
    name, so that destinations no longer configured can be chosen too)."""
    state = KeyTextTransform("state", KeyTransform(destination, "delivery"))
    return Q(In(state, list(NOT_REACHED)))


def _failed() -> OutboxEventQuerySet:
    return cast(OutboxEventQuerySet, OutboxEvent.objects.filter(status=Status.FAILED))


def _rows(events: QuerySet[OutboxEvent]) -> Iterator[tuple[Any, Any, str, datetime]]:
    ordered = events.order_by("-scheduled_at", "pk").values_list(*COLUMNS)
    yield from ordered.iterator(chunk_size=CHUNK)


def _entries(delivery: Any) -> Iterable[tuple[str, Mapping[str, Any]]]:
    if not isinstance(delivery, Mapping):
        return []
    return [(name, e) for name, e in delivery.items() if isinstance(e, Mapping)]
