"""Timing a drain: from the commit that makes N events due to the moment none is pending.

The workers start first, on an empty outbox, and wait in their loop; then one transaction adds
every event. Timing from its commit leaves out Python's and Django's start-up, and lets several
workers start together.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psycopg

from harness.process import Process

from .database import wait_until_none
from .machine import busy_cpu_seconds
from .workers import running

#: 0.1.1's command line (batches of 100, this package's default too): the like-for-like drain.
LEGACY_OPTIONS = ("--interval", "0", "--batch-size", "100")
#: The options of the throughput figures: batches of 500 (``BROADCASTER["BATCH_SIZE"]``), as the
#: raw ceiling uses. docs/performance.md says when a larger batch is right.
WORKER_OPTIONS = ("--interval", "0", "--batch-size", "500")
DRAIN_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class Drain:
    """A timed drain: its events, its seconds, and the CPU time the whole machine spent.

    The CPU time counts every process (the workers, PostgreSQL, Redis, this one's polling),
    from ``/proc/stat``: see :mod:`benchmarks.machine`.
    """

    events: int
    seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        """Return the events drained per second."""
        return self.events / self.seconds

    @property
    def busy_cores(self) -> float:
        """Return how many cores were busy on average during the drain."""
        return self.cpu_seconds / self.seconds

    @property
    def cpu_us_per_event(self) -> float:
        """Return the machine's CPU time per event drained, in microseconds."""
        return self.cpu_seconds / self.events * 1e6


def timed_drain(
    workers: Sequence[Process],
    fill: Callable[[], None],
    poll: psycopg.Connection,
    events: int,
    unfinished: Sequence[str] = ("pending",),
) -> Drain:
    """Start ``workers``, run ``fill`` (one commit of ``events``), time it until none is left.

    Returns the seconds from that commit until no row has a status in ``unfinished`` (rows not
    yet delivered), and the CPU time the machine spent meanwhile. ``poll`` is a connection to
    the workers' database. Raises ``RuntimeError`` if a worker fails, ``TimeoutError`` if it
    hangs.
    """
    with running(workers):
        fill()
        started, cpu_started = time.perf_counter(), busy_cpu_seconds()
        finished = wait_until_none(poll, unfinished, DRAIN_TIMEOUT_S)
        cpu_finished = busy_cpu_seconds()
    return Drain(events, finished - started, cpu_finished - cpu_started)
