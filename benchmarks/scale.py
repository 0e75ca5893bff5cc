"""How big each measurement is: the full run reported in the docs, or a smoke run for CI."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    """Sizes of the measurements; every ratio comes from ``rounds`` alternating rounds."""

    drain_events: int
    legacy_events: int
    history_rows: int
    memory_events: int
    latency_s: float
    publish_events: int
    priority_backlog: int
    rounds: int
    #: The production-shaped measurements (``--production``): see docs/performance.md.
    longtx_events: int
    longtx_hold_s: float
    load_s: float
    backlogs: tuple[int, ...]
    cleanup_rows: int


FULL = Scale(
    drain_events=20_000,
    legacy_events=2_000,
    history_rows=1_000_000,
    memory_events=200_000,
    latency_s=30.0,
    publish_events=2_000,
    priority_backlog=50_000,
    rounds=3,
    longtx_events=300_000,
    longtx_hold_s=300.0,
    load_s=60.0,
    backlogs=(0, 200_000, 2_000_000),
    cleanup_rows=5_000_000,
)
#: Everything runs, at sizes far too small for the figures to mean anything.
SMOKE = Scale(
    drain_events=500,
    legacy_events=100,
    history_rows=5_000,
    memory_events=2_000,
    latency_s=2.0,
    publish_events=100,
    priority_backlog=2_000,
    rounds=1,
    longtx_events=20_000,
    longtx_hold_s=30.0,
    load_s=10.0,
    backlogs=(0, 20_000, 100_000),
    cleanup_rows=100_000,
)
