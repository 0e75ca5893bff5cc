"""Scale out: two worker processes draining PostgreSQL to Redis, against one.

Beside the ratio, three figures say where it comes from, read from the machine's CPU time during
the best drain of each: how many cores one worker (with PostgreSQL and Redis) leaves idle, how
many two workers keep busy, and the CPU time each event costs with two against one. The ratio is
the product of the first two ratios divided by the third (two workers can only use the cores
one leaves idle, and only as well as each event's cost allows); see docs/performance.md.
"""

from __future__ import annotations

from .drains import Drain
from .machine import cores
from .redis_drain import drain
from .report import Figure, Goal
from .rounds import best_results
from .scale import Scale


def measure(scale: Scale) -> list[Figure]:
    """Return the two-worker drain rate, its ratio to one worker's, and the CPU figures."""
    count = scale.drain_events
    drains = best_results(
        scale.rounds,
        {"one": lambda: drain(count, workers=1), "two": lambda: drain(count, workers=2)},
        key=_rate,
        higher_is_better=True,
    )
    one, two = drains["one"], drains["two"]
    machine = float(cores())
    return [
        Figure("Redis drain, 2 workers", two.rate, "ev/s", one.rate, "1 worker", Goal(">=", 1.4)),
        Figure("cores, against those busy with 1 worker", machine, "cores", one.busy_cores, "busy"),
        Figure("cores busy with 2 workers", two.busy_cores, "cores", machine, "all"),
        Figure(
            "CPU time per event, 2 workers",
            two.cpu_us_per_event,
            "µs/ev",
            one.cpu_us_per_event,
            "1 worker",
        ),
    ]


def _rate(result: Drain) -> float:
    return result.rate
