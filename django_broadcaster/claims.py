"""Leasing due outbox rows to a worker, and the frozen values the worker gets for them.

A claim moves rows out of the due set for a while (a lease): it pushes ``scheduled_at`` past the
lease's end and stamps a ``lease_token``, which every later write of the worker must present.

On PostgreSQL and SQLite the claim is one ``UPDATE ... WHERE id IN (due rows) RETURNING``
statement: PostgreSQL locks the chosen rows with ``FOR UPDATE SKIP LOCKED`` (so concurrent workers
pass each other by), and SQLite runs the whole statement under its single write lock. Other
databases select the rows, then lease them with a compare-and-set that only wins on rows still
due. Either way a row reaches at most one worker per lease.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, cast

from django.db import connections, transaction
from django.db.models import Field
from django.utils import timezone

from .events import CloudEvent
from .models import OutboxEvent, OutboxEventQuerySet, Status

#: The columns a worker needs to deliver a row and record what happened to it.
CLAIMED_FIELDS: Final = (
    "id",
    "event_type",
    "source",
    "subject",
    "data_content_type",
    "data_schema",
    "data",
    "extensions",
    "time",
    "expires_at",
    "backends",
    "delivered",
    "retry_count",
    "max_retries",
)
#: Databases whose UPDATE can return the rows it changed.
UPDATE_RETURNING_VENDORS: Final = frozenset({"postgresql", "sqlite"})


@dataclass(frozen=True)
class ClaimedEvent:
    """One outbox row as leased to a worker: its CloudEvent and what delivery needs to know.

    ``backends`` is ``None`` when the publisher wanted every backend; ``delivered`` lists the
    destinations that already have the event.
    """

    pk: uuid.UUID
    lease_token: uuid.UUID
    event: CloudEvent
    backends: tuple[str, ...] | None
    delivered: tuple[str, ...]
    retry_count: int
    max_retries: int
    expires_at: datetime | None

    def wants_backend(self, alias: str) -> bool:
        """Return whether the publisher wanted this event sent to backend ``alias``."""
        return self.backends is None or alias in self.backends


@dataclass(frozen=True)
class Claim:
    """Rows leased to one worker, oldest first, and the token that proves the lease."""

    token: uuid.UUID
    rows: list[ClaimedEvent]


def claim(due: OutboxEventQuerySet, limit: int, lease: timedelta) -> Claim:
    """Lease up to ``limit`` rows of ``due`` (claimable rows, oldest first) and return them."""
    token = uuid.uuid4()
    leased_until = timezone.now() + lease
    vendor = connections[due.db].vendor
    lease_rows = _lease_returning if vendor in UPDATE_RETURNING_VENDORS else _lease_in_two_steps
    with transaction.atomic(using=due.db):
        values = lease_rows(due, limit, token, leased_until)
    rows = [_claimed(row, token) for row in values]
    return Claim(token, sorted(rows, key=_publish_order))


def _lease_returning(
    due: OutboxEventQuerySet, limit: int, token: uuid.UUID, leased_until: datetime
) -> list[dict[str, Any]]:
    """Lease the rows in one statement; return the leased rows' values by field name."""
    picked = due.select_for_update(skip_locked=True).values("pk")[:limit]
    picked_sql, picked_params = picked.query.get_compiler(using=due.db).as_sql()
    connection = connections[due.db]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(_field(name).column)) for name in CLAIMED_FIELDS)
    sql = (
        f"UPDATE {quote(OutboxEvent._meta.db_table)} "
        f"SET {quote('lease_token')} = %s, {quote('scheduled_at')} = %s "
        f"WHERE {quote('id')} IN ({picked_sql}) RETURNING {columns}"
    )
    token_value = _field("lease_token").get_db_prep_value(token, connection)
    until_value = _field("scheduled_at").get_db_prep_value(leased_until, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, (token_value, until_value, *picked_params))
        return _decoded(due, cursor.fetchall())


def _lease_in_two_steps(
    due: OutboxEventQuerySet, limit: int, token: uuid.UUID, leased_until: datetime
) -> list[dict[str, Any]]:
    """Select the rows, then lease those still due; return the leased rows' values by name.

    The lease is a compare-and-set, for databases whose UPDATE cannot return rows.
    """
    ids = list(due.select_for_update(skip_locked=True).values_list("pk", flat=True)[:limit])
    if not ids:
        return []
    now = timezone.now()
    OutboxEvent.objects.using(due.db).filter(
        pk__in=ids, status=Status.PENDING, scheduled_at__lte=now
    ).update(lease_token=token, scheduled_at=leased_until)
    leased = OutboxEvent.objects.using(due.db).filter(pk__in=ids, lease_token=token)
    return list(leased.values(*CLAIMED_FIELDS))


def _decoded(due: OutboxEventQuerySet, rows: Iterable[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Turn raw column values into Python values, as the ORM would (JSON, dates, UUIDs).

    Only the columns that need converting are touched (on PostgreSQL, just the JSON ones).
    """
    converters = _converters(due)
    decoded = []
    for row in rows:
        values = dict(zip(CLAIMED_FIELDS, row, strict=True))
        for name, convert in converters:
            values[name] = convert(values[name])
        decoded.append(values)
    return decoded


def _converters(due: OutboxEventQuerySet) -> list[tuple[str, Callable[[Any], Any]]]:
    """Return the converting function of each claimed column that has one, by field name."""
    connection = connections[due.db]
    converters = []
    for name in CLAIMED_FIELDS:
        field = _field(name)
        column = field.get_col(OutboxEvent._meta.db_table)
        steps = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
        if steps:
            converters.append((name, _chain(steps, column, connection)))
    return converters


def _field(name: str) -> Field[Any, Any]:
    return cast("Field[Any, Any]", OutboxEvent._meta.get_field(name))


def _chain(
    steps: Sequence[Callable[..., Any]], column: Any, connection: Any
) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        for step in steps:
            value = step(value, column, connection)
        return value

    return convert


def _claimed(row: dict[str, Any], token: uuid.UUID) -> ClaimedEvent:
    event = CloudEvent.trusted(
        event_type=row["event_type"],
        source=row["source"],
        data=row["data"],
        subject=row["subject"] or None,
        id=str(row["id"]),
        time=row["time"],
        datacontenttype=row["data_content_type"],
        dataschema=row["data_schema"] or None,
        extensions=row["extensions"] or {},
    )
    backends = row["backends"]
    return ClaimedEvent(
        pk=row["id"],
        lease_token=token,
        event=event,
        backends=None if backends is None else tuple(backends),
        delivered=tuple(row["delivered"] or ()),
        retry_count=row["retry_count"],
        max_retries=row["max_retries"],
        expires_at=row["expires_at"],
    )


def _publish_order(row: ClaimedEvent) -> uuid.UUID:
    return row.pk  # ids are time-ordered (UUIDv7): publish order
