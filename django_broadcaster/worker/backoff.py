"""Delays between attempts: pure functions, easy to test."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta


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
