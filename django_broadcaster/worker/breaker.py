"""A circuit breaker per backend, so that an outage costs one failed call, not one per event."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from .backoff import backoff_delay

logger = logging.getLogger(__name__)


class CircuitBreaker:
    """Track one backend's health.

    After a failure the breaker is *open* until a backed-off moment; the worker does not call the
    backend meanwhile and defers its events to that moment. The first call after it is a trial:
    success closes the breaker, failure opens it again for longer.
    """

    def __init__(self, alias: str, base: timedelta, cap: timedelta) -> None:
        self.alias = alias
        self.base = base
        self.cap = cap
        self.failures = 0
        self.open_until: datetime | None = None

    def is_open(self, now: datetime) -> bool:
        """Return whether calls to the backend should be skipped at ``now``."""
        return self.open_until is not None and now < self.open_until

    def record_failure(self, now: datetime, error: BaseException) -> datetime:
        """Open the breaker after ``error`` and return when the backend may be tried again."""
        self.failures += 1
        self.open_until = now + backoff_delay(self.failures, self.base, self.cap)
        logger.warning(
            "Backend %r is unavailable (%s); pausing it until %s.",
            self.alias,
            error,
            self.open_until.isoformat(timespec="seconds"),
        )
        return self.open_until

    def pause_again(self, now: datetime, error: BaseException) -> datetime:
        """Pause again from ``now`` for the current delay, after a failure already counted.

        For a call that was already counted as failed when its deadline passed, and has now
        ended with an outage error: the pause restarts from when it really ended.
        """
        self.open_until = now + backoff_delay(self.failures or 1, self.base, self.cap)
        logger.info("Backend %r is still unavailable (%s).", self.alias, error)
        return self.open_until

    def record_success(self) -> None:
        """Close the breaker."""
        if self.failures:
            logger.info("Backend %r is available again.", self.alias)
        self.failures = 0
        self.open_until = None
