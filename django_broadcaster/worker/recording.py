"""Write the outcomes of a delivery attempt back to the outbox, in bulk.

Rows delivered everywhere become ``published`` in one UPDATE; the others (retry, deferral after
an outage, or failure) are written with one ``bulk_update``. Every write is guarded by the lease
token, so a worker whose lease ran out (and whose rows another worker took over) changes nothing.

A batch that all went well is one UPDATE, atomic by itself, so it runs without ``BEGIN`` and
``COMMIT`` round trips (several writes share a transaction). On PostgreSQL that UPDATE is
written once per database and takes the batch's ids as one array literal: compiling Django's
``pk__in`` filter of 500 ids, and quoting each of them into the SQL, cost more than running it.

:func:`prepare` decides what each row becomes and :meth:`Record.write` writes it, so the worker
can write one batch's record while it sends the next (see ``Worker.run_once(record_later=True)``).
"""

from __future__ import annotations

import functools
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connections, router
from django.utils import timezone

from ..claims import atomic_unless_one_statement
from ..conf import BroadcasterSettings
from ..models import RELEASED, OutboxEvent, Status, outbox_field
from ..signals import event_failed, event_published
from .backoff import backoff_delay
from .delivery import Outcome

UNFINISHED_FIELDS = [
    "status",
    "scheduled_at",
    "retry_count",
    "last_error",
    "delivered",
    "lease_token",
    "leased_until",
]


@dataclass(frozen=True)
class BatchSummary:
    """Counts of what one batch ended as."""

    published: int = 0
    retried: int = 0
    deferred: int = 0
    failed: int = 0
    expired: int = 0

    @property
    def handled(self) -> int:
        """Return how many rows the batch had."""
        return self.published + self.retried + self.deferred + self.failed + self.expired


def record(
    outcomes: Sequence[Outcome], token: uuid.UUID, config: BroadcasterSettings
) -> BatchSummary:
    """Store ``outcomes`` for rows leased under ``token``; send the signals; return the counts."""
    return prepare(outcomes, token, config).write()


@dataclass(frozen=True)
class Record:
    """The writes that record one delivered batch, worked out and not yet run."""

    token: uuid.UUID
    now: datetime
    complete: list[Outcome]
    unfinished: list[tuple[Outcome, OutboxEvent]]
    failed: list[tuple[Outcome, OutboxEvent]]  # the unfinished rows that end failed
    summary: BatchSummary

    def write(self) -> BatchSummary:
        """Run the writes, then send the signals; return :attr:`summary`.

        Raises ``DatabaseError`` if a write fails; the batch's rows then stay leased, and are
        delivered again when the lease runs out.
        """
        groups = _group_by_destinations(self.complete)
        database = router.db_for_write(OutboxEvent)
        with atomic_unless_one_statement(database, len(groups) + bool(self.unfinished)):
            for delivered, ids in groups.items():
                mark_published(database, self.token, ids, list(delivered), self.now)
            if self.unfinished:
                leased = OutboxEvent.objects.using(database).filter(lease_token=self.token)
                leased.bulk_update([row for _, row in self.unfinished], UNFINISHED_FIELDS)
        _send_signals(self.complete, self.failed)
        return self.summary


def prepare(outcomes: Sequence[Outcome], token: uuid.UUID, config: BroadcasterSettings) -> Record:
    """Return the writes recording ``outcomes`` (of rows leased under ``token``), not yet run.

    What each row becomes (published, retried, deferred, failed or expired) is decided now.
    """
    now = timezone.now()
    complete = [o for o in outcomes if o.complete]
    unfinished = [(o, _unfinished_row(o, now, config)) for o in outcomes if not o.complete]
    failed = [(o, row) for o, row in unfinished if row.status == Status.FAILED]
    summary = BatchSummary(
        published=len(complete),
        retried=sum(1 for o, row in unfinished if o.errors and row.status == Status.PENDING),
        deferred=sum(1 for o, _ in unfinished if o.unavailable and not o.errors and not o.expired),
        failed=len(failed),
        expired=sum(1 for o, _ in unfinished if o.expired),
    )
    return Record(token, now, complete, unfinished, failed, summary)


def mark_published(
    database: str,
    token: uuid.UUID,
    ids: Sequence[uuid.UUID | str],
    delivered: list[str],
    now: datetime,
) -> int:
    """Mark the rows ``ids`` still leased under ``token`` published at ``now``; return how many.

    ``ids`` are the rows' ids, as UUIDs or as their text (a claimed event's ``id``).
    ``delivered`` is stored as the destinations that have the events; the lease is cleared.
    """
    changes = {
        "status": Status.PUBLISHED,
        "published_at": now,
        "delivered": delivered,
        "last_error": "",
        **RELEASED,
    }
    connection = connections[database]
    if connection.vendor != "postgresql":
        leased = OutboxEvent.objects.using(database).filter(lease_token=token, pk__in=ids)
        return int(leased.update(**changes))
    values = [outbox_field(name).get_db_prep_save(v, connection) for name, v in changes.items()]
    # One array literal: psycopg would dump a list of UUIDs one by one, at about 4 us each.
    id_array = "{" + ",".join(map(str, ids)) + "}"
    values += [outbox_field("lease_token").get_db_prep_value(token, connection), id_array]
    with connection.cursor() as cursor:
        cursor.execute(_published_statement(database, tuple(changes)), values)
        return int(cursor.rowcount)


@functools.lru_cache(maxsize=16)
def _published_statement(database: str, columns: tuple[str, ...]) -> str:
    """Return the PostgreSQL UPDATE of :func:`mark_published`: set ``columns``, ids in an array."""
    quote = connections[database].ops.quote_name

    def column(name: str) -> str:
        return quote(str(outbox_field(name).column))

    assignments = ", ".join(f"{column(name)} = %s" for name in columns)
    return (
        f"UPDATE {quote(OutboxEvent._meta.db_table)} SET {assignments} "
        f"WHERE {column('lease_token')} = %s AND {column('id')} = ANY(%s::uuid[])"
    )


def _group_by_destinations(outcomes: Sequence[Outcome]) -> dict[tuple[str, ...], list[Any]]:
    """Group row ids by the destinations reached: one UPDATE each (events of one type share).

    The ids are the events' ids, which are the rows' ids as text, ready for the UPDATE.
    """
    groups: dict[tuple[str, ...], list[Any]] = defaultdict(list)
    for outcome in outcomes:
        groups[tuple(outcome.delivered)].append(outcome.event.id)
    return groups


def _unfinished_row(outcome: Outcome, now: datetime, config: BroadcasterSettings) -> OutboxEvent:
    """Return the row to write for an outcome that did not reach every destination."""
    claimed = outcome.row
    row = OutboxEvent(
        id=claimed.pk,
        status=Status.PENDING,
        retry_count=claimed.retry_count,
        delivered=outcome.delivered,
        **RELEASED,
    )
    if outcome.expired:
        row.status = Status.EXPIRED
        row.last_error = f"expired at {claimed.expires_at:%Y-%m-%dT%H:%M:%SZ} before delivery"
        return row
    problems = {**outcome.unavailable, **outcome.errors}
    row.last_error = "; ".join(f"{destination}: {why}" for destination, why in problems.items())
    if not outcome.errors:  # only outages: try again when the backend may be back
        row.scheduled_at = outcome.deferred_until or now
        return row
    row.retry_count += 1
    if row.retry_count > claimed.max_retries:
        row.status = Status.FAILED
        return row
    retry_at = now + backoff_delay(row.retry_count, config.retry_base_delay, config.retry_max_delay)
    row.scheduled_at = max(retry_at, outcome.deferred_until or retry_at)
    return row


def _send_signals(
    complete: Sequence[Outcome], failed: Sequence[tuple[Outcome, OutboxEvent]]
) -> None:
    if event_published.has_listeners(OutboxEvent):
        for outcome in complete:
            event_published.send(sender=OutboxEvent, event=outcome.event)
    if event_failed.has_listeners(OutboxEvent):
        for outcome, row in failed:
            event_failed.send(sender=OutboxEvent, event=outcome.event, error=row.last_error)
