"""The benchmark databases: create them, migrate them, fill and empty their outboxes.

Each benchmark database is created afresh on the server of ``DATABASE_URL`` and dropped at the
end. Filling is one ``INSERT ... SELECT`` over ``generate_series`` that copies a row written by
``publish_event``, so a million rows take seconds and every column the package adds is filled the
way the package fills it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import psycopg
from django.conf import settings
from django.core.management import call_command
from django.db import connections, transaction

from harness.polling import poll

from .workload import EVENT_TYPE, SOURCE, payload

OUTBOX_TABLE = "outbox_events"
#: Rows per commit when a fill is large: a million-row transaction only makes the WAL bigger.
FILL_CHUNK = 100_000
#: The advisory lock a run holds on the database of ``DATABASE_URL`` ("bench" in ASCII).
RUN_LOCK = 0x62656E6368
#: Row ids as time-ordered as the package's UUIDv7 ids: the creation millisecond first.
_TIME_ORDERED_ID = (
    "encode(set_byte(overlay(uuid_send(gen_random_uuid()) placing "
    "substring(int8send((extract(epoch from {t}) * 1000)::bigint) from 3) from 1 for 6), "
    "6, 112 + floor(random() * 16)::int), 'hex')::uuid"
)


def time_ordered_id(at: str) -> str:
    """Return SQL for a random UUID whose first 48 bits are the SQL time ``at`` in ms (UUIDv7)."""
    return _TIME_ORDERED_ID.format(t=at)


def database_url(name: str) -> str:
    """Return ``DATABASE_URL`` pointing at the database ``name`` instead."""
    return urlunsplit(urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{name}"))


def database_name(alias: str = "default") -> str:
    """Return the name of the database behind the Django alias ``alias``."""
    return str(settings.DATABASES[alias]["NAME"])


def connect(name: str) -> psycopg.Connection:
    """Open an autocommit connection to database ``name``; the caller closes it."""
    return psycopg.connect(database_url(name), autocommit=True)


@contextmanager
def exclusive_run() -> Iterator[None]:
    """Hold the benchmark lock of ``DATABASE_URL``'s server for the block.

    Raises ``RuntimeError`` if another run holds it: every run creates and drops databases of
    the same names, so two runs on one server would drop each other's databases mid-measurement.
    """
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as holder:
        row = holder.execute("SELECT pg_try_advisory_lock(%s)", (RUN_LOCK,)).fetchone()
        if not (row and row[0]):
            raise RuntimeError(
                "another benchmark run is using the PostgreSQL server of DATABASE_URL; wait for "
                "it to end, or point DATABASE_URL at another server"
            )
        yield  # the lock ends with the connection


def recreate_databases(names: Iterable[str]) -> None:
    """Drop (if present) and create each database in ``names`` on the server."""
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as admin:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')


def drop_databases(names: Iterable[str]) -> None:
    """Drop each database in ``names``, closing Django's connections to them first."""
    connections.close_all()
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as admin:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate(alias: str) -> None:
    """Create the package's tables in the Django database ``alias``."""
    call_command("migrate", database=alias, verbosity=0)


def empty_outbox(alias: str = "default") -> None:
    """Delete every row of the outbox of Django database ``alias``."""
    with connections[alias].cursor() as cursor:
        cursor.execute(f"TRUNCATE {OUTBOX_TABLE}")


def fill_outbox(
    count: int,
    *,
    alias: str = "default",
    published: bool = False,
    event_types: Sequence[str] = (EVENT_TYPE,),
    due_in: timedelta | None = None,
) -> None:
    """Add ``count`` workload events to the outbox of ``alias``, in one transaction.

    The rows are due now (created up to ``count`` microseconds ago, in order), or ``due_in``
    from now (pending, not due), or already ``published`` a day ago when ``published`` is true.
    They are shared out among ``event_types``, each type's rows a copy of one the publisher
    wrote (routed as it routes).
    """
    from django_broadcaster.models import OutboxEvent
    from django_broadcaster.publishers import publisher

    with transaction.atomic(using=alias):
        for index, event_type in enumerate(event_types):
            share = count // len(event_types) + (index < count % len(event_types))
            template = publisher.publish_event(event_type, SOURCE, payload(), using=alias)
            columns = [field.column for field in OutboxEvent._meta.concrete_fields]
            select = _cloned_columns(columns, share, published, due_in)
            with connections[alias].cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {OUTBOX_TABLE} ({', '.join(columns)}) SELECT {select} "
                    f"FROM {OUTBOX_TABLE} t, generate_series(1, %s) g WHERE t.id = %s",
                    [share, template.pk],
                )
            OutboxEvent.objects.using(alias).filter(pk=template.pk).delete()


def fill_and_vacuum(
    connection: psycopg.Connection,
    rows: int,
    *,
    published: bool = False,
    due_in: timedelta | None = None,
) -> float:
    """Add ``rows`` events as :func:`fill_outbox` does, in commits of :data:`FILL_CHUNK`, then
    ``VACUUM ANALYZE`` (as autovacuum would after them); return the seconds it all took.

    ``connection`` is an autocommit connection to the default database.
    """
    started = time.perf_counter()
    for start in range(0, rows, FILL_CHUNK):
        fill_outbox(min(FILL_CHUNK, rows - start), published=published, due_in=due_in)
    connection.execute(f"VACUUM ANALYZE {OUTBOX_TABLE}")
    return time.perf_counter() - started


def wait_until_none(
    connection: psycopg.Connection, statuses: Iterable[str], timeout_s: float
) -> float:
    """Poll until no outbox row has one of ``statuses``; return ``time.perf_counter()`` then.

    Polls every 5 ms. Raises ``TimeoutError`` after ``timeout_s`` seconds.
    """
    wanted = ", ".join(f"'{status}'" for status in statuses)
    query = f"SELECT EXISTS (SELECT 1 FROM {OUTBOX_TABLE} WHERE status IN ({wanted}))"
    poll(
        lambda: connection.execute(query).fetchone() != (True,),
        timeout_s,
        f"no outbox row left {wanted}",
        every=0.005,
    )
    return time.perf_counter()


def count_rows(connection: psycopg.Connection, status: str) -> int:
    """Return how many outbox rows have ``status``."""
    row = connection.execute(
        f"SELECT count(*) FROM {OUTBOX_TABLE} WHERE status = %s", [status]
    ).fetchone()
    return int(row[0]) if row else 0


def _cloned_columns(
    columns: list[str], count: int, published: bool, due_in: timedelta | None = None
) -> str:
    """Return the SELECT list that copies the template row ``t`` for row number ``g``."""
    offset = f"({count} - g) * interval '1 microsecond'"
    if published:
        offset = f"interval '1 day' + {offset}"
    overrides: Mapping[str, str] = {
        "id": time_ordered_id(f"t.created_at - {offset}"),
        "created_at": f"t.created_at - {offset}",
        "scheduled_at": f"t.scheduled_at - {offset}",
        "time": f"t.time - {offset}",
    }
    if published:
        overrides = {**overrides, "status": "'published'", "published_at": "t.created_at"}
    if due_in is not None:
        ahead = f"interval '{due_in.total_seconds()} seconds'"
        overrides = {**overrides, "scheduled_at": f"t.scheduled_at + {ahead} - {offset}"}
    return ", ".join(overrides.get(column, f"t.{column}") for column in columns)
