"""Claim cost as history grows: one claim on an empty outbox against one beside 1,000,000
published rows.

Two databases side by side: ``default`` holds nothing but the pending rows, ``history`` holds
the same pending rows plus the published history (then ``VACUUM ANALYZE``, as autovacuum would).
Each round adds 1,000 due events to each and claims them 100 at a time (the default batch size)
with ``django_broadcaster.outbox.leases.claim``; a round's figure is the median claim time.
"""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

from django_broadcaster.models import OutboxEvent
from django_broadcaster.outbox.leases import claim

from .database import connect, database_name, empty_outbox, fill_outbox
from .report import Figure, Goal
from .rounds import best_of
from .scale import Scale

PENDING = 1_000
BATCH = 100
LEASE = timedelta(minutes=5)
FILL_CHUNK = 100_000


def claim_ms(alias: str) -> float:
    """Add ``PENDING`` due events to ``alias``, claim them all; return the median ms per claim."""
    OutboxEvent.objects.using(alias).filter(status="pending").delete()
    fill_outbox(PENDING, alias=alias)
    durations = []
    for _ in range(PENDING // BATCH):
        started = time.perf_counter()
        batch = claim(BATCH, LEASE, using=alias)
        durations.append((time.perf_counter() - started) * 1000)
        assert len(batch.rows) == BATCH, len(batch.rows)
    return statistics.median(durations)


def add_history(rows: int) -> None:
    """Fill ``history`` with ``rows`` published events, then vacuum and analyze both databases."""
    for alias in ("default", "history"):
        empty_outbox(alias)
    for start in range(0, rows, FILL_CHUNK):
        fill_outbox(min(FILL_CHUNK, rows - start), alias="history", published=True)
    for alias in ("default", "history"):
        with connect(database_name(alias)) as connection:
            connection.execute("VACUUM ANALYZE outbox_events")


def measure(scale: Scale) -> list[Figure]:
    """Return the claim time beside the published history, against an empty outbox."""
    add_history(scale.history_rows)
    times = best_of(
        scale.rounds + 2,
        {alias: (lambda a=alias: claim_ms(a)) for alias in ("default", "history")},
        higher_is_better=False,
    )
    name = f"claim of {BATCH} beside {scale.history_rows:,} published"
    return [Figure(name, times["history"], "ms", times["default"], "empty outbox", Goal("<=", 1.2))]
