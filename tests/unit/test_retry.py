"""Retry delays and circuit breakers: pure logic."""

from datetime import datetime, timedelta, timezone

import pytest

from django_broadcaster.retry import CircuitBreaker, backoff_delay

BASE, CAP = timedelta(seconds=2), timedelta(seconds=60)


@pytest.mark.parametrize(
    ("attempt", "ceiling"), [(1, 2), (2, 4), (3, 8), (5, 32), (6, 60), (50, 60), (10_000, 60)]
)
def test_backoff_doubles_up_to_the_cap(attempt: int, ceiling: int) -> None:
    assert backoff_delay(attempt, BASE, CAP, lambda: 1.0) == timedelta(seconds=ceiling)
    assert backoff_delay(attempt, BASE, CAP, lambda: 0.0) == timedelta(seconds=ceiling / 2)


def test_backoff_jitters_within_half_and_full() -> None:
    delays = {backoff_delay(3, BASE, CAP) for _ in range(50)}
    assert len(delays) > 1
    assert all(timedelta(seconds=4) <= d <= timedelta(seconds=8) for d in delays)


def test_backoff_rejects_attempt_zero() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        backoff_delay(0, BASE, CAP)


def test_breaker_opens_on_failure_and_closes_on_success() -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    breaker = CircuitBreaker("redis", BASE, CAP)
    assert not breaker.is_open(now)
    until = breaker.record_failure(now, OSError("refused"))
    assert breaker.is_open(now)
    assert not breaker.is_open(until)
    second = breaker.record_failure(until, OSError("refused"))
    assert second - until >= timedelta(seconds=2)  # backs off further
    assert breaker.pause_reason() == "backend paused: refused"  # the failure that opened it
    breaker.record_success()
    assert not breaker.is_open(until)
    assert breaker.failures == 0
    assert breaker.pause_reason() == "backend paused"
