"""Leasing due outbox rows to a worker, and the frozen values the worker gets for them.

A claim moves rows out of the due set until ``leased_until`` and stamps a ``lease_token``, which
every later write of the worker must present: a row reaches at most one worker per lease.
Concurrent workers pass each other by (``FOR UPDATE SKIP LOCKED`` on PostgreSQL). A claim is one
``UPDATE ... RETURNING`` where the database has it, else a select and a compare-and-set
(:mod:`.selected_leases`).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any, Final, NamedTuple

from django.db import connections, router, transaction
from django.utils import timezone

from ..events import CloudEvent
from .models import (
    RELEASED,
    DestinationEntry,
    OutboxEvent,
    Status,
    delivered_to,
    event_from_columns,
    outbox_field,
    wants_backend,
)
from .selected_leases import CLAIMED_FIELDS, lease_in_two_steps

#: Times no claim runs at, compiled into the claim statement in place of the current time and
#: of the floor.
_NOW: Final = datetime(2000, 1, 1, tzinfo=dt_timezone.utc)
_FLOOR: Final = datetime(1999, 1, 1, tzinfo=dt_timezone.utc)
#: Databases whose UPDATE can return the rows it changed.
UPDATE_RETURNING_VENDORS: Final = frozenset({"postgresql", "sqlite"})


@dataclass(frozen=True)
class ClaimedEvent:
    """One outbox row as leased to a worker: its CloudEvent and what delivery needs to know.

    ``backends`` is ``None`` when the publisher wanted every backend; ``delivery`` is the row's
    state with each destination (read-only: rows of a claim may share it), and ``delivered``
    names the destinations that already have the event.
    """

    pk: uuid.UUID
    lease_token: uuid.UUID
    event: CloudEvent
    backends: tuple[str, ...] | None
    delivery: Mapping[str, DestinationEntry]
    delivered: tuple[str, ...]
    retry_count: int
    max_retries: int
    expires_at: datetime | None
    scheduled_at: datetime

    def wants_backend(self, alias: str) -> bool:
        """Return whether the publisher wanted this event sent to backend ``alias``."""
        return wants_backend(self.backends, alias)


@dataclass(frozen=True)
class Claim:
    """Rows leased to one worker, oldest first, and the token that proves the lease."""

    token: uuid.UUID
    rows: list[ClaimedEvent]

    def earliest_scheduled(self) -> datetime | None:
        """Return the earliest ``scheduled_at`` among the rows, ``None`` if there are none."""
        return min((row.scheduled_at for row in self.rows), default=None)


def claim(
    limit: int,
    lease: timedelta,
    using: str | None = None,
    *,
    ids: Collection[uuid.UUID] = (),
    floor: datetime | None = None,
) -> Claim:
    """Lease up to ``limit`` claimable rows of the outbox for ``lease``; return them, oldest first.

    ``using`` is the database alias (default: the router's choice for writes). ``ids`` limits
    the claim to those rows (eager delivery); ``floor``, to rows scheduled at or after it
    (:mod:`.floors`). The caller records the outcomes with the claim's token before the lease
    ends (:mod:`.outcomes`), or the rows are claimable again.
    """
    database = using or router.db_for_write(OutboxEvent)
    token = uuid.uuid4()
    now = timezone.now()
    one_statement = not ids and connections[database].vendor in UPDATE_RETURNING_VENDORS
    lease_rows = _lease_returning if one_statement else functools.partial(lease_in_two_steps, ids)
    with atomic_unless_one_statement(database, 1 if one_statement else 2):
        values = lease_rows(database, limit, now, token, now + lease, floor)
    rows = [_claimed(row, token) for row in values]
    return Claim(token, sorted(rows, key=lambda row: row.pk))  # UUIDv7 ids: publish order


def release(claim: Claim, using: str | None = None) -> int:
    """Give back the rows of ``claim`` still held under its lease; return how many.

    They are due again at once, in their place (``scheduled_at`` is theirs); no retry is spent.
    """
    outbox = OutboxEvent.objects.using(using or router.db_for_write(OutboxEvent))
    held = outbox.filter(pk__in=[row.pk for row in claim.rows], lease_token=claim.token)
    return int(held.filter(status=Status.PENDING).update(**RELEASED))


def atomic_unless_one_statement(database: str, statements: int) -> AbstractContextManager[Any]:
    """Return the transaction for ``statements`` writes to ``database``.

    A single statement is atomic by itself, so it goes without ``BEGIN`` and ``COMMIT`` (two round
    trips) except in a caller's transaction, where a savepoint keeps its failure from aborting
    the caller's work. Several statements share ``transaction.atomic()``.
    """
    if statements > 1 or connections[database].in_atomic_block:
        return transaction.atomic(using=database)
    return nullcontext()


def _lease_returning(
    database: str,
    limit: int,
    now: datetime,
    token: uuid.UUID,
    leased_until: datetime,
    floor: datetime | None,
) -> list[dict[str, Any]]:
    """Lease the rows in one statement; return the leased rows' values by field name."""
    statement = _claim_statement(database, limit, floor is not None)
    connection = connections[database]
    prep = functools.partial(outbox_field("scheduled_at").get_db_prep_value, connection=connection)
    at = {_NOW: prep(now), _FLOOR: prep(floor)}
    picking = [at[stand_in] if stand_in else v for stand_in, v in statement.params]
    lease_token = outbox_field("lease_token").get_db_prep_value(token, connection)
    lease_end = outbox_field("leased_until").get_db_prep_value(leased_until, connection)
    with connection.cursor() as cursor, _in_index_order(cursor):
        if _loads_timestamps_natively(database):  # Django's values, faster (docs/performance.md)
            _load_timestamps_natively(cursor.cursor)
        cursor.execute(statement.sql, [*picking, lease_token, lease_end])
        return _decoded(database, cursor.fetchall())


@contextmanager
def _in_index_order(cursor: Any) -> Iterator[None]:
    """Make PostgreSQL pick the rows to claim by walking the due-row index, for the block.

    Statistics lag the outbox, and with them PostgreSQL may read and sort every due row instead
    (docs/performance.md). A caller's settings come back after the block.
    """
    connection = cursor.db
    if connection.vendor != "postgresql":
        yield
    elif connection.in_atomic_block:  # the claim runs in a savepoint of the caller's transaction
        cursor.execute(_READ_INDEX_ORDER)
        callers = cursor.fetchone()
        cursor.execute(_SET_INDEX_ORDER, ["off", "off"])
        yield  # a claim that fails rolls its savepoint back, settings and all
        cursor.execute(_SET_INDEX_ORDER, callers)
    else:
        with transaction.atomic(using=connection.alias):
            cursor.execute(_SET_INDEX_ORDER, ["off", "off"])
            yield


#: The planner settings :func:`_in_index_order` turns off, for the rest of the transaction.
_SET_INDEX_ORDER: Final = (
    "SELECT set_config('enable_sort', %s, true), set_config('enable_bitmapscan', %s, true)"
)
_READ_INDEX_ORDER: Final = (
    "SELECT current_setting('enable_sort'), current_setting('enable_bitmapscan')"
)


class _Statement(NamedTuple):
    sql: str
    params: tuple[tuple[datetime | None, Any], ...]  # each with the stand-in it is, if any


@functools.lru_cache(maxsize=32)
def _claim_statement(database: str, limit: int, floored: bool) -> _Statement:
    """Return the one-statement claim for ``database`` and ``limit``, compiled once.

    Compiling costs more than running: it is compiled with stand-in times, whose places among
    the parameters are noted for each claim's current time and floor.
    """
    connection = connections[database]
    due = OutboxEvent.objects.using(database).claimable(_NOW)
    due = due.filter(scheduled_at__gte=_FLOOR) if floored else due
    picked = due.select_for_update(skip_locked=True).values("pk")[:limit]
    with transaction.atomic(using=database):  # Django compiles FOR UPDATE only inside one
        picked_sql, params = picked.query.get_compiler(using=database).as_sql()
    prep = functools.partial(outbox_field("scheduled_at").get_db_prep_value, connection=connection)
    stand_ins = [(prep(time), time) for time in (_NOW, _FLOOR)]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(outbox_field(name).column)) for name in CLAIMED_FIELDS)
    # A materialized CTE picks once, so a claim never leases more than ``limit`` rows; the ids
    # are then found in the primary key (docs/performance.md). SQLite runs any CTE once.
    postgresql = connection.vendor == "postgresql"
    materialized = "MATERIALIZED " if postgresql else ""
    ids = f"SELECT {quote('pk')} FROM picked"
    picked_ids = f"= ANY(ARRAY({ids}))" if postgresql else f"IN ({ids})"
    sql = (
        f"WITH picked AS {materialized}({picked_sql}) "
        f"UPDATE {quote(OutboxEvent._meta.db_table)} "
        f"SET {quote('lease_token')} = %s, {quote('leased_until')} = %s "
        f"WHERE {quote('id')} {picked_ids} RETURNING {columns}"
    )
    marked = ((next((t for v, t in stand_ins if p == v), None), p) for p in params)
    return _Statement(sql, tuple(marked))


def _decoded(database: str, rows: Iterable[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Turn raw column values into Python values, as the ORM would (JSON, dates, UUIDs).

    ``data`` stays the database's JSON text, under ``data_json`` (``data`` is ``None``), decoded
    only if read (:meth:`CloudEvent.trusted`). Each distinct raw value is converted once per
    claim: rows with equal values, most of a batch, share the result.
    """
    converters = _converters(database)
    converted: dict[tuple[str, Any], Any] = {}
    decoded = []
    for row in rows:
        values = dict(zip(CLAIMED_FIELDS, row, strict=True))
        for name, convert in converters:
            raw = values[name]
            if (name, raw) not in converted:
                converted[name, raw] = convert(raw)
            values[name] = converted[name, raw]
        values["data_json"], values["data"] = values["data"], None
        decoded.append(values)
    return decoded


@functools.lru_cache(maxsize=16)
def _converters(database: str) -> list[tuple[str, Callable[[Any], Any]]]:
    """Return the converting function of each claimed column but ``data`` that has one."""
    connection = connections[database]
    converters: list[tuple[str, Callable[[Any], Any]]] = []
    for name in CLAIMED_FIELDS:
        field = outbox_field(name)
        column = field.get_col(OutboxEvent._meta.db_table)
        steps = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
        if steps and name != "data":
            converters.append((name, functools.partial(_convert, steps, column, connection)))
    return converters


def _convert(steps: Sequence[Callable[..., Any]], column: Any, connection: Any, value: Any) -> Any:
    for step in steps:
        value = step(value, column, connection)
    return value


@functools.lru_cache(maxsize=16)
def _loads_timestamps_natively(database: str) -> bool:
    """Return whether the claim can load ``database``'s times with psycopg's own loader."""
    if connections[database].vendor != "postgresql":
        return False
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return bool(is_psycopg3)


def _load_timestamps_natively(cursor: Any) -> None:
    """Make the psycopg 3 ``cursor`` load ``timestamptz`` with psycopg's own loader."""
    from psycopg import adapters, postgres
    from psycopg.pq import Format

    oid = postgres.types["timestamptz"].oid
    cursor.adapters.register_loader(oid, adapters.get_loader(oid, Format.TEXT))


def _claimed(row: dict[str, Any], token: uuid.UUID) -> ClaimedEvent:
    event = event_from_columns(row, functools.partial(CloudEvent.trusted, row.get("data_json")))
    backends, delivery = row["backends"], row["delivery"]
    return ClaimedEvent(
        pk=row["id"],
        lease_token=token,
        event=event,
        backends=None if backends is None else tuple(backends),
        delivery=delivery,
        delivered=tuple(delivered_to(delivery)) if delivery else (),
        retry_count=row["retry_count"],
        max_retries=row["max_retries"],
        expires_at=row["expires_at"],
        scheduled_at=row["scheduled_at"],
    )
