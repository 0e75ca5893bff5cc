"""What the worker tells its operator: what it delivers to, at start-up; then delivery rate and
lag, every few seconds that saw a change; and its running totals."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import DatabaseError

from .. import telemetry
from ..handler_names import HANDLER_PREFIX
from ..outbox.health import lags
from ..registry import EventRegistry
from ..telemetry import Tally

logger = logging.getLogger(__name__)


@dataclass
class WorkerStats(Tally):
    """Running totals since the worker started: the outcomes, and the batches that had work."""

    batches: int = 0


def destinations(backends: Iterable[str], registry: EventRegistry) -> str:
    """Return ``Backends: a, b. Handlers: type -> handler, handler; * -> handler.`` for the
    start-up line: the backend aliases, and each event type's handlers (``*``: every event's)."""
    by_type: dict[str, list[str]] = {}
    for name, event_types in registry.destinations().items():
        for event_type in sorted(event_types) if event_types is not None else ["*"]:
            by_type.setdefault(event_type, []).append(name.removeprefix(HANDLER_PREFIX))
    handlers = "; ".join(f"{kind} -> {', '.join(names)}" for kind, names in sorted(by_type.items()))
    return f"Backends: {', '.join(sorted(backends)) or 'none'}. Handlers: {handlers or 'none'}."


class ProgressReport:
    """Measure the lag every ``interval`` seconds (0 for never); log it if anything happened.

    The lag is the outbox's (:func:`~django_broadcaster.outbox.health.lags`), overall and for
    each configured backend and each handler of ``registry`` (default: the global one) that an
    event waits for; the same figures go to the ``broadcaster_*lag_seconds`` gauges at every
    measurement. The line is logged only for an interval in which the worker handled events (a
    backend's breaker opens on a batch whose events it defers, so that counts), or in which lag
    appeared or cleared: an idle worker says nothing.
    """

    def __init__(self, interval: float, registry: EventRegistry | None = None) -> None:
        self.interval = interval
        self.registry = registry
        self.since = time.monotonic()
        self.before = Tally()  # the worker's totals at the start of the interval
        self.lagging = False  # whether the last measurement found an event waiting

    def maybe_log(self, totals: Tally) -> None:
        """Measure if ``interval`` has passed; ``totals`` are the worker's running totals."""
        now = time.monotonic()
        elapsed = now - self.since
        if not self.interval or elapsed < self.interval:
            return
        try:
            lag, by_destination = lags(registry=self.registry)
        except DatabaseError:
            return  # the next cycle reports the database error
        total = 0.0 if lag is None else lag.total_seconds()
        waiting = {name: d.total_seconds() for name, d in by_destination.items() if d is not None}
        telemetry.set_lag(total, {name: waiting.get(name, 0.0) for name in by_destination})
        if totals.as_dict() != self.before.as_dict() or bool(lag) != self.lagging:
            self._log(totals, elapsed, total, waiting)
        self.since, self.lagging, self.before = now, bool(lag), Tally(**totals.as_dict())

    def _log(self, totals: Tally, elapsed: float, lag: float, waiting: dict[str, float]) -> None:
        recent = totals.published - self.before.published
        logger.info(
            "Published %d events in %.0f s (%.0f/s); %d retried, %d failed in all; lag %.1f s%s.",
            recent,
            elapsed,
            recent / elapsed,
            totals.retried,
            totals.failed,
            lag,
            _listed(waiting),
        )


def _listed(waiting: dict[str, float]) -> str:
    """Return `` (kafka 35.2 s, redis 0.4 s)``: each destination's lag, or ``""`` if none."""
    listed = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in waiting.items())
    return f" ({listed})" if listed else ""
