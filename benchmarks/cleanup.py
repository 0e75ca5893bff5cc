"""Retention at scale: ``outbox_cleanup`` of ``cleanup_rows`` finished rows while a worker
drains, and the table's size once vacuum has run.

The outbox first holds ``cleanup_rows`` events published a day ago (``INSERT ... SELECT`` in
chunks, then ``VACUUM ANALYZE``). One worker runs throughout. Three timed drains of
``drain_events`` beside that history are the reference; then ``manage.py outbox_cleanup
--older-than 1h`` starts, and drains of the same size follow one another until it ends: the
figure is their events over their seconds. Then an explicit ``VACUUM`` (what autovacuum would do
after such a delete, at a time it picks) and the table's size (:mod:`benchmarks.table_size`);
then one more drain, to show that new rows reuse the space rather than grow the file.
"""

from __future__ import annotations

import os
import time

import psycopg

from harness.process import Process, django_command

from . import stream
from .database import (
    OUTBOX_TABLE,
    connect,
    database_name,
    empty_outbox,
    fill_and_vacuum,
    fill_outbox,
    wait_until_none,
)
from .drains import DRAIN_TIMEOUT_S, WORKER_OPTIONS
from .machine import process_cpu_seconds
from .report import Figure, Goal
from .scale import Scale
from .table_size import TableSize, table_size
from .workers import REPO, current_worker, running

REFERENCE_DRAINS = 3
CLEANUP_TIMEOUT_S = 3 * 3600.0


def timed_drain(poll: psycopg.Connection, count: int) -> float:
    """Commit ``count`` due events for the running worker; return the seconds to drain them."""
    fill_outbox(count)
    started = time.perf_counter()
    return wait_until_none(poll, ("pending",), DRAIN_TIMEOUT_S) - started


def cleanup_command() -> Process:
    """Return (not started) ``manage.py outbox_cleanup --older-than 1h`` of this tree."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.settings"}
    return Process(django_command("outbox_cleanup", "--older-than", "1h"), env=env, cwd=REPO)


def drains_during(poll: psycopg.Connection, cleanup: Process, count: int) -> list[float]:
    """Start ``cleanup`` and time drains of ``count`` until it ends; return their seconds.

    Raises ``RuntimeError`` if the cleanup fails.
    """
    seconds, started = [], time.perf_counter()
    with cleanup.start():
        while cleanup.alive or not seconds:
            seconds.append(timed_drain(poll, count))
        if cleanup.wait(CLEANUP_TIMEOUT_S) != 0:
            raise RuntimeError(f"outbox_cleanup failed:\n{cleanup.tail()}")
    took = time.perf_counter() - started
    print(f"[bench] cleanup: {cleanup.tail(1)} {took:.1f} s, {len(seconds)} drains", flush=True)
    return seconds


def measure(scale: Scale) -> list[Figure]:
    """Return the drain rate during the cleanup against without, and the table's size after."""
    empty_outbox()
    stream.reset()
    count = scale.drain_events
    with connect(database_name()) as poll:
        setup_s = fill_and_vacuum(poll, scale.cleanup_rows, published=True)
        print(f"[bench] cleanup: {scale.cleanup_rows:,} rows added in {setup_s:.1f} s", flush=True)
        worker = current_worker(stream.redis_backends(), *WORKER_OPTIONS)
        with running([worker]):
            cpu = [process_cpu_seconds(worker.pid)]
            reference = [timed_drain(poll, count) for _ in range(REFERENCE_DRAINS)]
            cpu.append(process_cpu_seconds(worker.pid))
            during = drains_during(poll, cleanup_command(), count)
            cpu.append(process_cpu_seconds(worker.pid))
            poll.execute(f"VACUUM {OUTBOX_TABLE}")
            vacuumed = table_size(poll)
            timed_drain(poll, count)
            refilled = table_size(poll)
    drained = count * (REFERENCE_DRAINS + len(during) + 1)
    if stream.length() != drained:
        raise RuntimeError(f"{stream.length()} of {drained} events reached Redis")
    cpu_us = [
        (cpu[1] - cpu[0]) / (count * len(reference)) * 1e6,
        (cpu[2] - cpu[1]) / (count * len(during)) * 1e6,
    ]
    return _figures(scale, count, (reference, during), cpu_us, (vacuumed, refilled))


def _figures(
    scale: Scale,
    count: int,
    drains: tuple[list[float], list[float]],
    cpu_us: list[float],
    sizes: tuple[TableSize, TableSize],
) -> list[Figure]:
    (reference, during), (vacuumed, refilled) = drains, sizes
    rows = f"{scale.cleanup_rows:,}"
    return [
        Figure(
            f"Redis drain during outbox_cleanup of {rows}",
            count * len(during) / sum(during),
            "ev/s",
            count * len(reference) / sum(reference),
            "no cleanup",
            Goal(">=", 0.8),
        ),
        Figure("worker CPU per event during cleanup", cpu_us[1], "µs/ev", cpu_us[0], "no cleanup"),
        Figure(
            "outbox in use after cleanup and VACUUM, per live",
            vacuumed.in_use_per_live,
            "x",
            goal=Goal("<=", 1.5, "measured"),
        ),
        Figure("outbox size after cleanup and VACUUM, per packed", vacuumed.size_per_packed, "x"),
        Figure(
            f"outbox size after {count:,} more events",
            refilled.table_bytes / 2**20,
            "MiB",
            vacuumed.table_bytes / 2**20,
            "after VACUUM",
        ),
    ]
