"""Couriers and stages: a backend that hangs is given up on at its deadline, settled later."""

import signal
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone

from django_broadcaster.retry import CircuitBreaker
from django_broadcaster.worker import delivery
from django_broadcaster.worker.delivery import Courier, Stage
from tests.doubles import HangingBackend
from tests.factories import published_event

#: Ample for a call that does not hang, even on a busy machine.
DEADLINE = timedelta(milliseconds=500)
PAUSE = timedelta(seconds=30)


@pytest.fixture
def hanging() -> HangingBackend:
    """Return a backend that holds every call until its ``release`` is set."""
    return HangingBackend("slow")


@pytest.fixture
def courier(hanging: HangingBackend) -> Iterator[Courier]:
    """Yield a courier to ``hanging``; let its held calls end at teardown."""
    courier = Courier(hanging, CircuitBreaker("slow", PAUSE, PAUSE, DEADLINE))
    yield courier
    hanging.release.set()
    courier.close()


def test_a_backend_that_misses_the_deadline_is_unavailable(courier: Courier) -> None:
    before = timezone.now()
    verdict = courier.finish(courier.start([published_event()]))
    assert verdict.unavailable_until is not None
    assert verdict.unavailable_until >= before + PAUSE / 2  # the breaker's (jittered) pause
    assert verdict.reason == "unavailable: timeout: no answer within 0.5 s"
    assert courier.breaker.is_open(timezone.now())


def test_no_new_call_while_a_late_one_runs(courier: Courier, hanging: HangingBackend) -> None:
    courier.finish(courier.start([published_event()]))
    courier.breaker.open_until = timezone.now()  # the pause is over, the call is not
    verdict = courier.finish(courier.start([published_event()]))
    assert verdict.reason == "still busy with a late call"
    assert len(hanging.calls) == 1


def test_a_late_success_closes_the_breaker_and_doubles_the_deadline(
    courier: Courier, hanging: HangingBackend
) -> None:
    late = courier.start([published_event()])
    courier.finish(late)
    hanging.release.set()
    assert late.future is not None and late.future.result() == {}

    verdict = courier.finish(courier.start([published_event()]))
    assert verdict.unavailable_until is None and verdict.error_for("x") is None
    assert courier.breaker.failures == 0
    assert courier.breaker.deadline >= 2 * DEADLINE
    assert len(hanging.calls) == 2


def test_a_late_outage_pauses_the_backend_from_when_it_ended(
    courier: Courier, hanging: HangingBackend
) -> None:
    hanging.then = "unavailable"
    late = courier.start([published_event()])
    courier.finish(late)
    courier.breaker.open_until = timezone.now()
    hanging.release.set()
    assert late.future is not None
    late.future.exception()  # wait for the call to end
    ended = timezone.now()

    verdict = courier.finish(courier.start([published_event()]))
    assert verdict.reason == "backend paused: timed out at last"  # how the late call ended
    assert verdict.unavailable_until is not None and verdict.unavailable_until > ended
    assert courier.breaker.failures == 1  # the same outage is not counted twice
    assert len(hanging.calls) == 1


@pytest.mark.parametrize("depth", [0, 1])
def test_stop_signals_wait_while_a_stage_runs_a_job(depth: int) -> None:
    stage = Stage("test", depth)
    try:
        mask = stage.submit(lambda: signal.pthread_sigmask(signal.SIG_BLOCK, [])).result()
    finally:
        stage.close()
    assert {signal.SIGTERM, signal.SIGINT, signal.SIGALRM} <= set(mask)
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # back after it


def test_a_late_call_is_timed_by_when_it_ended_not_when_it_was_noticed(
    courier: Courier, hanging: HangingBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    late = courier.start([published_event()])
    courier.finish(late)
    hanging.release.set()
    assert late.future is not None and late.future.result() == {}

    an_hour_later = timezone.now() + timedelta(hours=1)  # the next batch comes much later
    monkeypatch.setattr(delivery.timezone, "now", lambda: an_hour_later)
    courier.finish(courier.start([published_event()]))
    assert courier.breaker.deadline < timedelta(minutes=1)
