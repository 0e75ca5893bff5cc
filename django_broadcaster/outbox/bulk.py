"""Writing many outbox rows in one statement: ``COPY`` on PostgreSQL, ``bulk_create`` elsewhere.

Django's ``bulk_create`` on PostgreSQL sends each column as one array parameter (``UNNEST``), and
psycopg escapes every double quote of every JSON value inside that array in Python. ``COPY ...
FROM STDIN`` streams the same values, prepared by the same Django fields, with the escaping done
in psycopg's C code, which is much faster for JSON data (docs/performance.md).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from django.db import connections, models

from .models import OutboxEvent

#: Rows per INSERT where ``COPY`` is not available (SQLite caps a statement's parameters).
INSERT_BATCH = 1000


def insert_rows(rows: Sequence[OutboxEvent], database: str) -> None:
    """Insert ``rows`` (new, with their ids set) into the outbox of ``database``, in order.

    The rows join the current transaction of ``database``; without one, they are written all or
    none. Afterwards each row counts as saved to ``database``. Database errors are Django's
    (``django.db.IntegrityError`` for a duplicate id...), as with ``bulk_create``.
    """
    connection = connections[database]
    if not uses_copy(connection):
        OutboxEvent.objects.using(database).bulk_create(rows, batch_size=INSERT_BATCH)
        return
    _copy(rows, connection)
    for row in rows:
        row._state.adding = False
        row._state.db = database


def uses_copy(connection: Any) -> bool:
    """Return whether :func:`insert_rows` writes with ``COPY`` on ``connection``.

    It does on PostgreSQL through psycopg 3, whose cursors can stream ``COPY``; psycopg2 keeps
    ``bulk_create``.
    """
    return bool(connection.vendor == "postgresql" and connection.Database.__name__ == "psycopg")


def _copy(rows: Sequence[OutboxEvent], connection: Any) -> None:
    fields = OutboxEvent._meta.concrete_fields
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    statement = f"COPY {quote(OutboxEvent._meta.db_table)} ({columns}) FROM STDIN"
    started = time.monotonic()
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy(statement) as copy,
    ):
        for row in rows:
            copy.write_row(_values(row, fields, connection))
    if connection.queries_logged:  # what Django's debug cursor does: DEBUG's queries see COPY
        duration = time.monotonic() - started
        connection.queries_log.append(
            {"sql": f"{statement} ({len(rows)} rows)", "time": f"{duration:.3f}"}
        )


def _values(row: OutboxEvent, fields: Sequence[Any], connection: Any) -> list[Any]:
    """Return the column values of ``row`` as Django's INSERT would send them.

    Only JSON values need Django's preparing (psycopg must be told they are JSON, and ``data``
    may come already encoded: :class:`~django_broadcaster.outbox.models.EventDataField`); every
    other column of a row built by the publisher already holds what Django would send to
    PostgreSQL (strings, integers, UUIDs, datetimes, ``None``), so it goes as it is, sparing a
    costly step. ``tests/integration/test_bulk.py`` checks the stored columns are the same.
    """
    return [
        field.get_db_prep_save(field.pre_save(row, True), connection)
        if isinstance(field, models.JSONField)
        else row.__dict__[field.attname]
        for field in fields
    ]
