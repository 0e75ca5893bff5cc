"""Publish and drain beside a backlog of pending events that are not due, against none.

The backlog is what an outage leaves behind: pending rows at the workload's priority whose
``scheduled_at`` is an hour ahead (retries backing off, events scheduled for later). Such rows
sit in the claim's partial index (``status = 'pending'``), after the due rows of their priority,
so they load that index as production would; published history is the ``claim`` measurement's
business. Each round starts empty and grows the backlog through ``backlogs`` (0, 200,000 and
2,000,000 rows in the full run), filled by ``INSERT ... SELECT`` in chunks and then vacuumed and
analyzed, as autovacuum would after such inserts. At each size: ``publish_events`` events
published one transaction each (the rate), then a timed drain of ``drain_events`` due events by
one worker, then one claim of 100 explained with only 10 due rows, a claim that cannot fill its
batch and so reads on past the due rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

import psycopg
from django.db import transaction

from django_broadcaster.publishers import publisher
from harness.polling import poll

from . import stream
from .claim_statistics import explain_claim
from .database import (
    OUTBOX_TABLE,
    connect,
    database_name,
    empty_outbox,
    fill_and_vacuum,
    fill_outbox,
)
from .drains import DRAIN_TIMEOUT_S, WORKER_OPTIONS
from .report import Figure, Goal
from .rounds import best_results
from .scale import Scale
from .workers import current_worker, running
from .workload import EVENT_TYPE, SOURCE, payload

NOT_DUE_FOR = timedelta(hours=1)
#: The due rows beside the explained claim of 100: too few to fill it.
FEW_DUE = 10
_DUE_LEFT = (
    f"SELECT EXISTS (SELECT 1 FROM {OUTBOX_TABLE} WHERE status = 'pending' "
    "AND scheduled_at <= now())"
)


@dataclass(frozen=True)
class AtSize:
    """The figures at one backlog size: publish and drain rates, an unfilled claim's buffers."""

    publish_rate: float
    drain_rate: float
    claim_buffers: int


def publish_rate(count: int) -> float:
    """Publish ``count`` events, each in its own transaction; return events/s."""
    data = payload()
    started = time.perf_counter()
    for _ in range(count):
        with transaction.atomic():
            publisher.publish_event(EVENT_TYPE, SOURCE, data)
    return count / (time.perf_counter() - started)


def drain_rate(poll_connection: psycopg.Connection, count: int) -> float:
    """Time one worker draining ``count`` due events to Redis beside the backlog; return ev/s.

    The drain is timed until the stream holds every event: a query for the due rows left would
    read the backlog's index entries every 5 ms, and load the database it measures.
    """
    stream.reset()
    with running([current_worker(stream.redis_backends(), *WORKER_OPTIONS)]):
        fill_outbox(count)
        started = time.perf_counter()
        seconds = stream.wait_for_length(count, DRAIN_TIMEOUT_S) - started
        poll(
            lambda: poll_connection.execute(_DUE_LEFT).fetchone() == (False,),
            DRAIN_TIMEOUT_S,
            "every delivered event recorded",
        )
    if stream.length() != count:
        raise RuntimeError(f"{stream.length()} of {count} events reached Redis")
    return count / seconds


def at_size(poll_connection: psycopg.Connection, scale: Scale) -> AtSize:
    """Measure publishing, draining and an unfilled claim beside the backlog as it is now."""
    published = publish_rate(scale.publish_events)
    _drop_due_and_published(poll_connection)
    drained = drain_rate(poll_connection, scale.drain_events)
    _drop_due_and_published(poll_connection)
    fill_outbox(FEW_DUE)
    buffers = explain_claim(100).buffers
    _drop_due_and_published(poll_connection)
    return AtSize(published, drained, buffers)


def one_round(scale: Scale) -> dict[int, AtSize]:
    """Grow the backlog through ``scale.backlogs`` from empty; return the figures by size."""
    empty_outbox()
    results, size = {}, 0
    with connect(database_name()) as poll_connection:
        for target in scale.backlogs:
            seconds = fill_and_vacuum(poll_connection, target - size, due_in=NOT_DUE_FOR)
            print(f"[bench] backlog: {target - size:,} rows added in {seconds:.1f} s", flush=True)
            size = target
            results[size] = at_size(poll_connection, scale)
    return results


def measure(scale: Scale) -> list[Figure]:
    """Return publish and drain rates and an unfilled claim's buffers by backlog size."""
    rounds = best_results(
        scale.rounds, {"grown": lambda: one_round(scale)}, key=_largest_drain, higher_is_better=True
    )["grown"]
    empty = rounds[scale.backlogs[0]]
    figures = []
    for size in scale.backlogs[1:]:
        got, beside = rounds[size], f"beside {size:,} pending not due"
        goal = Goal(">=", 0.8) if size == scale.backlogs[-1] else None
        figures += [
            Figure(f"Redis drain {beside}", got.drain_rate, "ev/s", empty.drain_rate, "none", goal),
            Figure(f"publish_event {beside}", got.publish_rate, "ev/s", empty.publish_rate, "none"),
            Figure(
                f"EXPLAIN claim of 100, {FEW_DUE} due, {beside}",
                got.claim_buffers,
                "buffers",
                empty.claim_buffers,
                "none",
            ),
        ]
    return figures


def _drop_due_and_published(poll_connection: psycopg.Connection) -> None:
    """Delete every row but the backlog, and vacuum, so the next step starts beside it alone."""
    poll_connection.execute(
        f"DELETE FROM {OUTBOX_TABLE} WHERE status <> 'pending' OR scheduled_at <= now()"
    )
    poll_connection.execute(f"VACUUM {OUTBOX_TABLE}")


def _largest_drain(results: dict[int, AtSize]) -> float:
    return results[max(results)].drain_rate
