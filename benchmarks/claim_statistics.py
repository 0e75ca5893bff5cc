"""What a claim costs inside PostgreSQL: the worker's claims from ``pg_stat_statements``, one
claim's ``EXPLAIN (ANALYZE, BUFFERS)``.

Buffers per claimed row do not depend on how busy the machine is, unlike milliseconds, so they
are the evidence a shared machine can give about where a claim's time goes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import psycopg
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext

from django_broadcaster.outbox.leases import claim

#: How the claim statement starts (``outbox/leases.py``), to find it among other statements.
CLAIM_PREFIX: Final = "WITH picked AS"
_LEASE: Final = timedelta(minutes=5)


@dataclass(frozen=True)
class ClaimStatistics:
    """Claims summed over a stretch of time: calls, rows leased, milliseconds, shared buffers."""

    calls: int
    rows: int
    total_ms: float
    buffers: int

    @property
    def mean_ms(self) -> float:
        """Return the mean milliseconds per claim (0 without a claim)."""
        return self.total_ms / self.calls if self.calls else 0.0

    @property
    def rows_per_call(self) -> float:
        """Return the mean rows leased per claim (0 without a claim)."""
        return self.rows / self.calls if self.calls else 0.0

    @property
    def us_per_row(self) -> float:
        """Return the microseconds of claiming per leased row (0 without a row)."""
        return self.total_ms * 1000 / self.rows if self.rows else 0.0

    @property
    def buffers_per_row(self) -> float:
        """Return the shared buffers (hit or read) per leased row (0 without a row)."""
        return self.buffers / self.rows if self.rows else 0.0


def enable_statistics(connection: psycopg.Connection) -> None:
    """Create ``pg_stat_statements`` in ``connection``'s database and empty its counters.

    Raises ``RuntimeError`` when the server was not started with the library preloaded.
    """
    row = connection.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
    if not row or "pg_stat_statements" not in row[0]:
        raise RuntimeError(
            "this measurement reads pg_stat_statements: start PostgreSQL with "
            "shared_preload_libraries=pg_stat_statements (scripts/services does)"
        )
    connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    connection.execute("SELECT pg_stat_statements_reset()")


def claim_statistics(connection: psycopg.Connection) -> ClaimStatistics:
    """Return the claims counted since :func:`enable_statistics`, in this database."""
    row = connection.execute(
        "SELECT coalesce(sum(calls), 0), coalesce(sum(rows), 0), "
        "coalesce(sum(total_exec_time), 0), coalesce(sum(shared_blks_hit + shared_blks_read), 0) "
        "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database "
        "WHERE datname = current_database()) AND query LIKE %s",
        [CLAIM_PREFIX + "%"],
    ).fetchone()
    assert row is not None
    return ClaimStatistics(int(row[0]), int(row[1]), float(row[2]), int(row[3]))


@dataclass(frozen=True)
class ExplainedClaim:
    """One claim's plan as run: rows leased, shared buffers, milliseconds, and the plan text."""

    rows: int
    buffers: int
    ms: float
    plan: str


def explain_claim(
    limit: int, alias: str = "default", floor: datetime | None = None
) -> ExplainedClaim:
    """Run one claim of ``limit`` (from ``floor``, if any, as a worker's claim ahead does) under
    ``EXPLAIN (ANALYZE, BUFFERS)`` and roll it back.

    The statement is the package's own, caught from a real claim (also rolled back), and runs
    with the claim's planner settings.
    """
    with CaptureQueriesContext(connections[alias]) as queries, _rolled_back(alias):
        claim(limit, _LEASE, using=alias, floor=floor)
    sql = next(q["sql"] for q in queries.captured_queries if q["sql"].startswith(CLAIM_PREFIX))
    with _rolled_back(alias), connections[alias].cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off")
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}")
        document = cursor.fetchone()[0]
    top = (json.loads(document) if isinstance(document, str) else document)[0]
    plan = top["Plan"]
    buffers = plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0)
    return ExplainedClaim(plan["Actual Rows"], buffers, top["Execution Time"], json.dumps(top))


@contextmanager
def _rolled_back(alias: str) -> Iterator[None]:
    """Run the block in a transaction of ``alias`` and roll it back at the end."""
    with transaction.atomic(using=alias):
        yield
        transaction.set_rollback(True, using=alias)
