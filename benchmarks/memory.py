"""Worker memory: resident set size while one worker drains many events to Redis.

The RSS of the worker subprocess is sampled every 0.2 s from ``/proc`` (Linux), with the number
of events in the stream at that moment. Growth is the last sample against the first taken after
a tenth of the events, once imports, connections and caches are warm.
"""

from __future__ import annotations

import time
from pathlib import Path

from harness.process import Process

from . import stream
from .database import empty_outbox, fill_outbox
from .drains import WORKER_OPTIONS
from .report import Figure, Goal
from .scale import Scale
from .workers import current_worker, running

SAMPLE_EVERY_S = 0.2


def rss_mb(pid: int) -> float:
    """Return the resident set size of process ``pid`` in MiB (read from ``/proc``)."""
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def rss_samples(worker: Process, count: int) -> list[tuple[int, float]]:
    """Return ``(events in the stream, RSS in MiB)`` pairs until ``count`` events are there."""
    samples = []
    while (delivered := stream.length()) < count:
        samples.append((delivered, rss_mb(worker.pid)))
        time.sleep(SAMPLE_EVERY_S)
    samples.append((count, rss_mb(worker.pid)))
    return samples


def measure(scale: Scale) -> list[Figure]:
    """Return the peak RSS and the growth of RSS across the drain."""
    count = scale.memory_events
    empty_outbox()
    stream.reset()
    worker = current_worker(stream.redis_backends(), *WORKER_OPTIONS)
    with running([worker]):
        fill_outbox(count)
        samples = rss_samples(worker, count)
    stream.reset()  # the entries take hundreds of MB in Redis
    warm = next(rss for delivered, rss in samples if delivered >= count // 10)
    peak = max(rss for _, rss in samples)
    return [
        Figure(f"worker RSS peak, {count:,} events", peak, "MiB", goal=Goal("<", 120, "measured")),
        Figure("worker RSS growth", samples[-1][1], "MiB", warm, "after 1/10", Goal("<", 1.10)),
    ]
