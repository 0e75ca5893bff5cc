"""Timing a drain: from the commit that makes N events due to the moment none is pending.

The workers start first, on an empty outbox, and wait in their loop; then one transaction adds
every event. Timing from its commit leaves out Python's and Django's start-up, and lets several
workers start together.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import psycopg

from .database import wait_until_none
from .workers import WorkerProcess, running

#: 0.1.1's command line (batches of 100, this package's default too): the like-for-like drain.
LEGACY_OPTIONS = ("--interval", "0", "--batch-size", "100")
#: The options of the throughput figures: batches of 500 (``BROADCASTER["BATCH_SIZE"]``), as the
#: raw ceiling uses. docs/performance.md says when a larger batch is right.
WORKER_OPTIONS = ("--interval", "0", "--batch-size", "500")
DRAIN_TIMEOUT_S = 1800.0


def timed_drain(
    workers: Sequence[WorkerProcess],
    fill: Callable[[], None],
    poll: psycopg.Connection,
    unfinished: Sequence[str] = ("pending",),
) -> float:
    """Start ``workers``, run ``fill`` (one commit), return seconds until no row is unfinished.

    ``poll`` is a connection to the workers' database; ``unfinished`` are the statuses of rows
    not yet delivered. Raises ``RuntimeError`` if a worker fails, ``TimeoutError`` if it hangs.
    """
    with running(workers):
        fill()
        started = time.perf_counter()
        finished = wait_until_none(poll, unfinished, DRAIN_TIMEOUT_S)
    return finished - started
