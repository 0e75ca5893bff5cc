"""Every retry decision of the package: when to try again, and when to stop trying.

- :func:`backoff_delay`: the one delay curve, doubling from a base to a cap, with jitter;
- :class:`CircuitBreaker`: one destination's health; after an outage it is not called until a
  backed-off moment, and a call that ends late lengthens how long it is waited for;
- :func:`decide`: what an outbox event that did not reach every destination becomes: retried
  later (a rejection spends a retry), deferred (an outage spends none) or failed;
  :func:`held_until`: how long an event waits that a paused backend was not even called for;
- :class:`RetryPolicy`: how often a consumer retries a failing event before it is a dead letter.

Retries are decided by what happened (refused, or unreachable), never by an error's text.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

logger = logging.getLogger(__name__)


def backoff_delay(
    attempt: int,
    base: timedelta,
    cap: timedelta,
    random_fraction: Callable[[], float] = random.random,
) -> timedelta:
    """Return how long to wait before attempt ``attempt + 1``, given ``attempt`` >= 1 failures.

    The delay doubles with each failure from ``base`` and never exceeds ``cap``; jitter keeps it
    between half and all of that, so events that failed together do not retry in lockstep.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be at least 1, got {attempt}")
    exponential = base * (1 << min(attempt - 1, 32))
    ceiling = min(exponential, cap)
    return ceiling * (0.5 + random_fraction() / 2)


class CircuitBreaker:
    """Track one destination's health: whether to call it now, and how long to wait for it.

    After a failure the breaker is *open* until a backed-off moment; the worker does not call the
    destination meanwhile and defers its events to that moment. The first call after it is a
    trial: success closes the breaker, failure opens it again for longer. ``last_error`` is
    the failure that opened it, which is why the destination is paused. ``deadline`` is how
    long a call is waited for; a call that ends after it means the destination is slow rather
    than down, and :meth:`record_slow_call` lengthens the deadline.
    """

    def __init__(
        self, alias: str, base: timedelta, cap: timedelta, deadline: timedelta | None = None
    ) -> None:
        self.alias = alias
        self.base = base
        self.cap = cap
        self.deadline = deadline or timedelta(seconds=2)
        self.failures = 0
        self.open_until: datetime | None = None
        self.last_error: BaseException | None = None

    def is_open(self, now: datetime) -> bool:
        """Return whether calls to the destination should be skipped at ``now``."""
        return self.open_until is not None and now < self.open_until

    def record_failure(self, now: datetime, error: BaseException) -> datetime:
        """Open the breaker after ``error`` and return when the destination may be tried again."""
        self.failures += 1
        self.open_until = now + _pause(backoff_delay(self.failures, self.base, self.cap), error)
        self.last_error = error
        logger.warning(
            "Backend %r is unavailable (%s); pausing it until %s.",
            self.alias,
            error,
            self.open_until.isoformat(timespec="seconds"),
        )
        return self.open_until

    def pause_again(self, now: datetime, error: BaseException) -> datetime:
        """Pause again from ``now`` for the current delay, after a failure already counted.

        For a call counted as failed when its deadline passed that has now ended with an outage
        error: the pause restarts from when it really ended.
        """
        self.open_until = now + _pause(
            backoff_delay(self.failures or 1, self.base, self.cap), error
        )
        self.last_error = error
        logger.info("Backend %r is still unavailable (%s).", self.alias, error)
        return self.open_until

    def pause_reason(self) -> str:
        """Return why the destination is not called while the breaker is open."""
        return "backend paused" + ("" if self.last_error is None else f": {self.last_error}")

    def busy_until(self, now: datetime) -> datetime:
        """Return when to try again while a call that missed its deadline is still running."""
        return now + backoff_delay(max(self.failures, 1), self.base, self.cap)

    def record_slow_call(self, took: timedelta) -> None:
        """Wait longer for the destination from now on: a call took ``took``, past the deadline."""
        self.deadline = max(self.deadline * 2, took * 2)
        logger.warning(
            "Backend %r took %.1f s for a batch; waiting up to %.1f s for it from now on.",
            self.alias,
            took.total_seconds(),
            self.deadline.total_seconds(),
        )

    def record_success(self) -> None:
        """Close the breaker."""
        if self.failures:
            logger.info("Backend %r is available again.", self.alias)
        self.failures = 0
        self.open_until = None
        self.last_error = None


def _pause(backoff: timedelta, error: BaseException) -> timedelta:
    """Return ``backoff``, or longer if ``error`` says the destination asked for longer."""
    asked = getattr(error, "retry_after", None)
    return max(backoff, asked) if isinstance(asked, timedelta) else backoff


#: How many of the longest pauses an event waits past a paused backend's trial when the backend
#: was not even called for it. Held, the pile is not claimed and deferred again at every trial,
#: ahead of newer events that healthy destinations wait for; it is woken as soon as the backend
#: takes an event again (:mod:`django_broadcaster.outbox.waiting`), and comes back by itself in
#: case no worker saw that.
HELD_PAUSES = 4


def held_until(trial: datetime, cap: timedelta) -> datetime:
    """Return when an event that a paused backend was not called for is due by itself.

    That is ``HELD_PAUSES`` times the longest pause ``cap`` (``BREAKER_MAX_DELAY``) after the
    backend's ``trial``, the moment its breaker lets a call through.
    """
    return trial + cap * HELD_PAUSES


#: What became of an event after an attempt that did not reach every destination.
Result = Literal["retried", "deferred", "failed"]


@dataclass(frozen=True)
class Decision:
    """What an unfinished event becomes: its result, its retries spent, and when to try next.

    ``retry_at`` is ``None`` for a failed event, which is not tried again.
    """

    result: Result
    retry_count: int
    retry_at: datetime | None


def decide(
    *,
    rejected: bool,
    retry_count: int,
    max_retries: int,
    unavailable_until: datetime | None,
    now: datetime,
    base: timedelta,
    cap: timedelta,
) -> Decision:
    """Decide what becomes of an event that some destination did not take.

    A rejection (``rejected``) spends a retry: the event fails once it has spent more than
    ``max_retries``, and is otherwise retried after :func:`backoff_delay` (from ``base`` to
    ``cap``), or when the unavailable destinations may be back, whichever is later. An outage
    alone spends none: the event waits until ``unavailable_until``.
    """
    if not rejected:
        return Decision("deferred", retry_count, unavailable_until or now)
    spent = retry_count + 1
    if is_last_attempt(retry_count, max_retries):
        return Decision("failed", spent, None)
    retry_at = now + backoff_delay(spent, base, cap)
    return Decision("retried", spent, max(retry_at, unavailable_until or retry_at))


def is_last_attempt(retry_count: int, max_retries: int) -> bool:
    """Return whether a rejection now, after ``retry_count`` retries, makes the event fail."""
    return retry_count + 1 > max_retries


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a consumer retries a failing event before it is a dead letter.

    A failure is retried in place, ``max_attempts`` attempts in all, waiting
    :func:`backoff_delay` from ``base_delay`` to ``max_delay`` in between.
    """

    max_attempts: int = 5
    base_delay: timedelta = timedelta(seconds=1)
    max_delay: timedelta = timedelta(seconds=30)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")

    def delay(self, failures: int) -> float:
        """Return the seconds to wait after ``failures`` failed attempts."""
        return backoff_delay(failures, self.base_delay, self.max_delay).total_seconds()

    def gives_up(self, attempt: int) -> bool:
        """Return whether attempt number ``attempt``, having failed, was the last."""
        return attempt >= self.max_attempts
