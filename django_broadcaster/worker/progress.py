"""The worker's progress line: delivery rate and lag, every few seconds."""

from __future__ import annotations

import logging
import time

from django.db import DatabaseError
from django.utils import timezone

from .. import telemetry
from ..outbox.models import OutboxEvent
from ..outbox.outcomes import Tally

logger = logging.getLogger(__name__)


class ProgressReport:
    """Log how the worker is doing every ``interval`` seconds (0 for never)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
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
            oldest = OutboxEvent.objects.oldest_due(timezone.now())
        except DatabaseError:
            return  # the next cycle reports the database error
        lag = 0.0 if oldest is None else max((timezone.now() - oldest).total_seconds(), 0.0)
        recent = published - self.published_before
        logger.info(
            "Published %d events in %.0f s (%.0f/s); %d retried, %d failed in all; lag %.1f s.",
            recent,
            elapsed,
            recent / elapsed,
            retried,
            failed,
            lag,
        )
        telemetry.set_lag(lag)
        self.since, self.published_before = now, published
