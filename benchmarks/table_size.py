"""How big the outbox table is against what its live rows need (``pgstattuple``).

Two ratios, because a plain ``VACUUM`` frees space for reuse without giving it back to the file
system (only empty pages at the file's end are cut off):

- *in use / live*: the bytes not free for reuse (live and dead rows, page headers) over the live
  rows' bytes; it is near 1 once vacuum has reclaimed the dead rows;
- *size / packed*: the file's size over what the live rows would take written afresh at the
  table's ``fillfactor``; it stays high after a large delete until new rows fill the space.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from .database import OUTBOX_TABLE


@dataclass(frozen=True)
class TableSize:
    """``pgstattuple``'s counts for a table, and the table's ``fillfactor`` (percent)."""

    table_bytes: int
    live_bytes: int
    dead_bytes: int
    free_bytes: int
    fillfactor: int

    @property
    def in_use_per_live(self) -> float:
        """Return the bytes not free for reuse over the live rows' bytes (0 with no live row)."""
        return (self.table_bytes - self.free_bytes) / self.live_bytes if self.live_bytes else 0.0

    @property
    def size_per_packed(self) -> float:
        """Return the table's size over the live rows' bytes at the fillfactor (0 with none)."""
        packed = self.live_bytes * 100 / self.fillfactor
        return self.table_bytes / packed if packed else 0.0


def table_size(connection: psycopg.Connection, table: str = OUTBOX_TABLE) -> TableSize:
    """Return ``table``'s size counts; creates the ``pgstattuple`` extension if missing."""
    connection.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
    row = connection.execute(
        "SELECT table_len, tuple_len, dead_tuple_len, free_space, coalesce((SELECT "
        "substring(option FROM 'fillfactor=(\\d+)')::int FROM unnest(reloptions) option "
        "WHERE option LIKE 'fillfactor=%%'), 100) FROM pgstattuple(%s), pg_class "
        "WHERE pg_class.oid = %s::regclass",
        [table, table],
    ).fetchone()
    assert row is not None
    return TableSize(*(int(value) for value in row))
