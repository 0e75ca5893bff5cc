"""Latency from commit to Redis under load: publishers offering 50% and 90% of what one worker
drains, measured in the same run.

First one worker with the default settings (``outbox_worker``, no options) drains
:data:`CAPACITY_EVENTS` (or ``drain_events``) alone: its rate is the capacity. Then
:data:`PUBLISHERS` processes (:mod:`benchmarks.steady_publisher`) each commit small
transactions on a fixed schedule so that together they offer a share of that capacity for
``load_s`` seconds, while the same worker delivers. Latency = the stream entry's time (Redis's
clock, in its id) - the commit time, as in :mod:`benchmarks.latency`. The publishers share the
two cores with the worker, so the offered rate they reached is a figure too, and so are two
costs that hardly depend on how busy the machine is, each against the capacity drain: the
worker's CPU time per event and the rows each of its claims leased (``pg_stat_statements``).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg

from harness.process import Process

from . import stream
from .claim_statistics import ClaimStatistics, claim_statistics, enable_statistics
from .database import connect, database_name, empty_outbox, fill_outbox, wait_until_none
from .drains import DRAIN_TIMEOUT_S
from .latency import ARRIVAL_TIMEOUT_S
from .machine import process_cpu_seconds
from .report import Figure, Goal
from .rounds import best_results
from .scale import Scale
from .steady_publisher import READY_LINE
from .workers import REPO, current_worker, running

PUBLISHERS = 4
#: The most transactions a second one publisher commits: beyond it, transactions grow instead.
TRANSACTIONS_PER_S = 100
#: Enough events for the capacity drain to be more than its first claims, even in a smoke run.
CAPACITY_EVENTS = 5_000
#: The goals (p50, p99 in ms) by share of capacity. At 90% a queue waits about ten times as long
#: as at 50%, so the bounds are five times the 50% ones.
GOALS = {0.5: (10.0, 50.0), 0.9: (50.0, 250.0)}


@dataclass(frozen=True)
class WorkerCost:
    """What the worker spent on a stretch of work: its CPU time per event, its claims."""

    cpu_us_per_event: float
    claims: ClaimStatistics


@dataclass(frozen=True)
class Latencies:
    """One loaded run: the rate the publishers reached, the latency percentiles (ms), the
    worker's cost."""

    offered: float
    p50: float
    p99: float
    cost: WorkerCost


def events_per_transaction(rate_per_publisher: float) -> int:
    """Return how many events each transaction holds so a publisher commits at most
    :data:`TRANSACTIONS_PER_S` transactions a second (at least one event)."""
    return max(1, math.ceil(rate_per_publisher / TRANSACTIONS_PER_S))


def percentiles(committed: Mapping[str, float], arrived: Mapping[str, int]) -> tuple[float, float]:
    """Return the median and 99th percentile of arrival - commit over the committed events.

    Raises ``ValueError`` naming how many committed events never arrived.
    """
    missing = [event_id for event_id in committed if event_id not in arrived]
    if missing:
        raise ValueError(f"{len(missing)} of {len(committed)} committed events never arrived")
    latencies = [arrived[event_id] - at for event_id, at in committed.items()]
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return cuts[49], cuts[98]


def loaded_latency(rate: float, seconds: float) -> Latencies:
    """Offer ``rate`` events/s for ``seconds`` to one default worker; return the latencies."""
    empty_outbox()
    stream.reset()
    share = rate / PUBLISHERS
    per_transaction = events_per_transaction(share)
    with tempfile.TemporaryDirectory(prefix="bench-load.") as folder:
        go = Path(folder) / "go"
        publishers = [
            _publisher(share, seconds, per_transaction, go, Path(folder) / f"{n}.json")
            for n in range(PUBLISHERS)
        ]
        worker = current_worker(stream.redis_backends())
        with connect(database_name()) as poll, running([worker]), running(publishers):
            enable_statistics(poll)
            cpu_started = process_cpu_seconds(worker.pid)
            go.touch()
            for publisher in publishers:
                if publisher.wait(seconds * 10 + 60) != 0:
                    raise RuntimeError(f"a publisher failed:\n{publisher.tail()}")
            committed = _read_commits(Path(folder))
            stream.wait_for_length(len(committed), ARRIVAL_TIMEOUT_S)
            cost = _cost(worker, cpu_started, len(committed), poll)
    first, last = min(committed.values()), max(committed.values())
    p50, p99 = percentiles(committed, stream.arrival_ms())
    return Latencies(len(committed) / max((last - first) / 1000, 1e-3), p50, p99, cost)


def capacity(count: int) -> tuple[float, WorkerCost]:
    """Time one default worker draining ``count`` events alone; return its rate and cost."""
    empty_outbox()
    stream.reset()
    worker = current_worker(stream.redis_backends())
    with connect(database_name()) as poll, running([worker]):
        enable_statistics(poll)
        cpu_started = process_cpu_seconds(worker.pid)
        fill_outbox(count)
        started = time.perf_counter()
        seconds = wait_until_none(poll, ("pending",), DRAIN_TIMEOUT_S) - started
        cost = _cost(worker, cpu_started, count, poll)
    return count / seconds, cost


def measure(scale: Scale) -> list[Figure]:
    """Return p50 and p99 at 50% and 90% of one worker's drain rate, and the offered rates."""
    alone = best_results(
        scale.rounds,
        {"one": lambda: capacity(max(scale.drain_events, CAPACITY_EVENTS))},
        key=_first,
        higher_is_better=True,
    )["one"]
    rate, cost = alone
    runs = best_results(
        scale.rounds,
        {str(share): (lambda s=share: loaded_latency(rate * s, scale.load_s)) for share in GOALS},
        key=_p99,
        higher_is_better=False,
    )
    figures = []
    for share, (p50_goal, p99_goal) in GOALS.items():
        run, name = runs[str(share)], f"commit to Redis at {share:.0%} of 1 worker"
        figures += [
            Figure(f"offered load, {share:.0%}", run.offered, "ev/s", rate * share, "target"),
            Figure(f"{name}, p50", run.p50, "ms", goal=Goal("<=", p50_goal, "measured")),
            Figure(f"{name}, p99", run.p99, "ms", goal=Goal("<=", p99_goal, "measured")),
            Figure(
                f"worker CPU per event at {share:.0%}",
                run.cost.cpu_us_per_event,
                "µs/ev",
                cost.cpu_us_per_event,
                "alone",
            ),
            Figure(
                f"rows per claim at {share:.0%}",
                run.cost.claims.rows_per_call,
                "rows",
                cost.claims.rows_per_call,
                "alone",
            ),
        ]
    return figures


def _publisher(rate: float, seconds: float, per_transaction: int, go: Path, out: Path) -> Process:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.settings"}
    arguments = (str(rate), str(seconds), str(per_transaction), str(go), str(out))
    command = [sys.executable, "-m", "benchmarks.steady_publisher", *arguments]
    return Process(command, env=env, cwd=REPO, ready_line=READY_LINE)


def _read_commits(folder: Path) -> dict[str, float]:
    committed: dict[str, float] = {}
    for path in sorted(folder.glob("*.json")):
        committed.update(json.loads(path.read_text()))
    return committed


def _cost(worker: Process, cpu_started: float, events: int, poll: psycopg.Connection) -> WorkerCost:
    cpu = process_cpu_seconds(worker.pid) - cpu_started
    return WorkerCost(cpu / events * 1e6, claim_statistics(poll))


def _first(result: tuple[float, WorkerCost]) -> float:
    return result[0]


def _p99(run: Latencies) -> float:
    return run.p99
