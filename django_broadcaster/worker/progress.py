"""The worker's progress line: delivery rate and lag, every few seconds."""

from __future__ import annotations

import logging
import time

from django.db import DatabaseError

from .. import telemetry
from ..outbox.health import lags
from ..outbox.outcomes import Tally
from ..registry import EventRegistry

logger = logging.getLogger(__name__)


class ProgressReport:
    """Log how the worker is doing every ``interval`` seconds (0 for never).

    The lag is the outbox's (:func:`~django_broadcaster.outbox.health.lags`), overall and for
    each configured backend and each handler of ``registry`` (default: the global one) that an
    event waits for; the same figures go to the ``broadcaster_*lag_seconds`` gauges.
    """

    def __init__(self, interval: float, registry: EventRegistry | None = None) -> None:
        self.interval = interval
        self.registry = registry
        self.since = time.monotonic()
        self.published_before = 0

    def maybe_log(self, totals: Tally) -> None:
        """Log a line if ``interval`` has passed; ``totals`` are the worker's running totals."""
        published, retried, failed = totals.published, totals.retried, totals.failed
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
        recent = published - self.published_before
        logger.info(
            "Published %d events in %.0f s (%.0f/s); %d retried, %d failed in all; lag %.1f s%s.",
            recent,
            elapsed,
            recent / elapsed,
            retried,
            failed,
            total,
            _listed(waiting),
        )
        telemetry.set_lag(total, {name: waiting.get(name, 0.0) for name in by_destination})
        self.since, self.published_before = now, published


def _listed(waiting: dict[str, float]) -> str:
    """Return `` (kafka 35.2 s, redis 0.4 s)``: each destination's lag, or ``""`` if none."""
    listed = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in waiting.items())
    return f" ({listed})" if listed else ""
