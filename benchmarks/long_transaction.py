"""A long transaction holding vacuum back, against the same run without it.

Another connection opens a ``REPEATABLE READ`` transaction and takes its snapshot (``SELECT
txid_current()``); while it stays open no row version that died after it can be removed, by
vacuum or by an index scan's clean-up. Meanwhile this process publishes ``longtx_events`` events
at an even pace over ``longtx_hold_s`` seconds and one worker delivers them to Redis, so dead row
versions pile up as a day's traffic would make them. Then, with the snapshot still held, one
commit adds a tenth as many events and the drain is timed until Redis holds them all (polling
the outbox would itself walk the dead entries the claims walk); ``pg_stat_statements`` gives
the worker's claims' time and buffers per event, and one claim of 100 is explained. The reference
case does the same with no snapshot held.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime

import psycopg

from . import stream
from .claim_statistics import (
    ClaimStatistics,
    claim_statistics,
    enable_statistics,
    explain_claim,
)
from .database import (
    OUTBOX_TABLE,
    connect,
    database_name,
    empty_outbox,
    fill_outbox,
    wait_until_none,
)
from .drains import DRAIN_TIMEOUT_S, WORKER_OPTIONS
from .report import Figure, Goal
from .rounds import best_results
from .scale import Scale
from .workers import current_worker, running

EXPLAINED_BATCH = 100
#: Publishing commits once a second during the hold, each commit a share of the events.
TICK_S = 1.0


@dataclass(frozen=True)
class Outcome:
    """One case: the timed drain's rate, its claims, and one explained claim's buffers."""

    rate: float
    claims: ClaimStatistics
    explained_buffers: int
    floored_buffers: int  # the same claim from the floor, as a worker's claim ahead


@contextmanager
def held_snapshot(name: str) -> Iterator[None]:
    """Hold a ``REPEATABLE READ`` transaction with a snapshot open on database ``name``."""
    with connect(name) as holder:
        holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        holder.execute("SELECT txid_current()")  # an xid and a snapshot: the horizon stops here
        yield
        holder.execute("ROLLBACK")


def publish_evenly(events: int, seconds: float) -> None:
    """Commit ``events`` events in equal shares, one share per ``TICK_S``, over ``seconds``."""
    ticks = max(1, round(seconds / TICK_S))
    next_at = time.perf_counter()
    for tick in range(ticks):
        time.sleep(max(0.0, next_at - time.perf_counter()))  # pacing, not waiting for a state
        fill_outbox(events // ticks + (tick < events % ticks))
        next_at += TICK_S


def run_case(scale: Scale, *, held: bool) -> Outcome:
    """Churn ``longtx_events`` through the outbox, then time a drain; with a snapshot if
    ``held``."""
    name, timed_events = database_name(), max(1, scale.longtx_events // 10)
    empty_outbox()
    stream.reset()
    worker = current_worker(stream.redis_backends(), *WORKER_OPTIONS)
    with connect(name) as poll, held_snapshot(name) if held else nullcontext():
        with running([worker]):
            publish_evenly(scale.longtx_events, scale.longtx_hold_s)
            stream.wait_for_length(scale.longtx_events, DRAIN_TIMEOUT_S)
            enable_statistics(poll)
            fill_outbox(timed_events)
            started = time.perf_counter()
            total = scale.longtx_events + timed_events
            seconds = stream.wait_for_length(total, DRAIN_TIMEOUT_S) - started
            claims = claim_statistics(poll)
            wait_until_none(poll, ("pending",), DRAIN_TIMEOUT_S)  # the last outcomes recorded
        fill_outbox(EXPLAINED_BATCH * 10)
        explained = explain_claim(EXPLAINED_BATCH)
        floored = explain_claim(EXPLAINED_BATCH, floor=_earliest_pending(poll))
    _check_delivered(scale.longtx_events + timed_events)
    return Outcome(timed_events / seconds, claims, explained.buffers, floored.buffers)


def measure(scale: Scale) -> list[Figure]:
    """Return the drain rate and claim cost behind a long transaction, against none."""
    outcomes = best_results(
        scale.rounds,
        {
            "held": lambda: run_case(scale, held=True),
            "free": lambda: run_case(scale, held=False),
        },
        key=_rate,
        higher_is_better=True,
    )
    held, free = outcomes["held"], outcomes["free"]
    behind = f"behind a {scale.longtx_hold_s:g} s transaction ({scale.longtx_events:,} events)"
    ref = "no long transaction"
    return [
        Figure(f"Redis drain {behind}", held.rate, "ev/s", free.rate, ref, Goal(">=", 0.7)),
        Figure(
            "claim time per event, long transaction",
            held.claims.us_per_row,
            "µs/ev",
            free.claims.us_per_row,
            ref,
            Goal("<=", 2),
        ),
        Figure("mean claim, long transaction", held.claims.mean_ms, "ms", free.claims.mean_ms, ref),
        Figure(
            "claim buffers per event, long transaction",
            held.claims.buffers_per_row,
            "buf/ev",
            free.claims.buffers_per_row,
            ref,
        ),
        Figure(
            f"EXPLAIN claim of {EXPLAINED_BATCH}, long transaction",
            held.explained_buffers,
            "buffers",
            free.explained_buffers,
            ref,
        ),
        Figure(
            f"EXPLAIN claim ahead of {EXPLAINED_BATCH} from the floor, long transaction",
            held.floored_buffers,
            "buffers",
            free.floored_buffers,
            ref,
        ),
    ]


def _earliest_pending(connection: psycopg.Connection) -> datetime:
    """Return the earliest ``scheduled_at`` of a pending row: the floor of a drain's claims."""
    row = connection.execute(
        f"SELECT min(scheduled_at) FROM {OUTBOX_TABLE} WHERE status = 'pending'"
    ).fetchone()
    assert row is not None and row[0] is not None
    return row[0]


def _check_delivered(count: int) -> None:
    if stream.length() != count:
        raise RuntimeError(f"{stream.length()} of {count} events reached Redis")


def _rate(outcome: Outcome) -> float:
    return outcome.rate
