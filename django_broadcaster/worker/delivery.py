"""Deliver a batch: each backend's share on its courier's thread, each handler meanwhile. Only
a handler's own transaction writes to the outbox here: its success, with its follow-ups."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import queue
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, wait
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.utils import timezone

from ..backends.base import BaseBackend
from ..bus import publish_returned
from ..conf import BroadcasterSettings
from ..dead_letters import dead_letter_aliases
from ..exceptions import BackendUnavailable, HandlerBusy, describe
from ..outbox.leases import ClaimedEvent
from ..outbox.outcomes import Outcome, record_handler_success
from ..publishers import published_so_far
from ..registry import EventRegistry
from ..retry import CircuitBreaker, is_last_attempt
from ..stopping import MAIN_THREAD_SIGNALS
from ..telemetry import delivery_span
from .letters import letter_calls

logger = logging.getLogger(__name__)

T = TypeVar("T")
Rejected = Mapping[str, BaseException]


class Stage:
    """One step of the worker's pipeline: jobs run in order, on a thread of their own or inline.

    With ``depth`` 1 or more a job runs on the stage's (daemon) thread while the caller goes on;
    :meth:`submit` first waits while ``depth`` jobs are unfinished. With 0 it runs at once, inline.
    Either way stop signals wait while a job runs, so a write is never cut in two.
    """

    def __init__(self, name: str, depth: int) -> None:
        self.name, self.depth = name, depth
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None]
        self._jobs = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._queued: list[Future[Any]] = []

    def submit(self, job: Callable[[], T]) -> Future[T]:
        """Run ``job`` (see the class) and return its future, which holds any error it raised."""
        future: Future[T] = Future()
        if self.depth == 0:
            with stop_signals_held():
                _run(future, job)
            return future
        self._queued = [queued for queued in self._queued if not queued.done()]
        if len(self._queued) >= self.depth:  # bounded: the oldest job must end first
            wait(self._queued[:1])  # its result or error is for its own reader
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
            self._thread.start()
        self._jobs.put((future, functools.partial(contextvars.copy_context().run, job)))
        self._queued.append(future)
        return future

    def close(self, wait_s: float = 0.0) -> None:
        """Let the thread end after the jobs queued, waiting up to ``wait_s`` (safe twice)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            thread.join(wait_s)

    def _serve(self) -> None:
        # Only the main thread runs Python's signal handlers: one landing here would wake no one.
        signal.pthread_sigmask(signal.SIG_BLOCK, MAIN_THREAD_SIGNALS)
        while (item := self._jobs.get()) is not None:
            future, job = item
            if future.set_running_or_notify_cancel():
                _run(future, job)


@dataclass(frozen=True)
class Verdict:
    """What a backend made of its share of a batch.

    With ``unavailable_until`` set, the backend took none of the events (or may not have): they
    wait until then, for ``reason`` (``tried``: whether it was called). Otherwise ``rejected``
    maps each refused event's id to why; ``failed`` is an unexpected error refusing them all.
    """

    rejected: Rejected = field(default_factory=dict)
    unavailable_until: datetime | None = None
    reason: str = ""
    failed: BaseException | None = None
    tried: bool = True

    def error_for(self, event_id: str) -> BaseException | None:
        """Return why the backend refused the event ``event_id``, or ``None`` if it took it."""
        return self.failed or self.rejected.get(event_id)


@dataclass(frozen=True)
class Call:
    """A call handed to a courier: a running one (``future``), or one already decided."""

    started: datetime
    events: int
    future: Future[Rejected] | None = None
    verdict: Verdict | None = None


class Courier:
    """Carry batches to one backend on a stage of its own, one call at a time, with a breaker."""

    def __init__(self, backend: BaseBackend, breaker: CircuitBreaker, for_all: bool = True) -> None:
        self.backend, self.breaker, self.alias = backend, breaker, backend.alias
        self.for_all = for_all  # False: a dead-letter backend; rows for "every backend" skip it
        self._stage = Stage(f"broadcaster-{backend.alias}", depth=1)
        self._late: Call | None = None
        self._last_call_ended = timezone.now()

    def takes(self, row: ClaimedEvent) -> bool:
        return self.alias in row.backends if row.backends is not None else self.for_all

    def start(self, events: Sequence[Any]) -> Call:
        """Start sending ``events``, or decide at once that the backend cannot take them now."""
        now = timezone.now()
        self._settle_late_call()
        if self._late is None and not self.breaker.is_open(now):
            return Call(now, len(events), future=self._stage.submit(lambda: self._send(events)))
        if self._late is None:
            reason, until = self.breaker.pause_reason(), self.breaker.open_until
        else:
            reason, until = "still busy with a late call", self.breaker.busy_until(now)
        verdict = Verdict(unavailable_until=until, reason=reason, tried=False)
        return Call(now, len(events), verdict=verdict)

    def finish(self, call: Call) -> Verdict:
        """Wait for ``call`` until the deadline and return the verdict.

        A call still running at the deadline makes the backend unavailable (its breaker opens); it
        goes on in the background, and the backend gets no new call until it has ended.
        """
        if call.verdict is not None:
            return call.verdict
        assert call.future is not None
        remaining = (call.started + self.breaker.deadline - timezone.now()).total_seconds()
        try:
            rejected = call.future.result(timeout=max(remaining, 0.0))
        except FutureTimeout:
            self._late = call
            seconds = self.breaker.deadline.total_seconds()
            return self._unavailable(TimeoutError(f"timeout: no answer within {seconds:g} s"))
        except BackendUnavailable as exc:
            return self._unavailable(exc)
        except Exception as exc:  # a bug or an unexpected error: every event of the call failed
            logger.exception("Backend %r failed on a batch of %d events", self.alias, call.events)
            return Verdict(failed=exc)
        self.breaker.record_success()
        return Verdict(rejected=rejected)

    def close(self) -> None:
        """Stop the stage and close the backend, not waiting for a late call; safe to call twice."""
        self._stage.close()
        if self._late is not None and self._late.future and not self._late.future.done():
            logger.warning("Closing backend %r while a late call is still running.", self.alias)
        self.backend.close()

    def _unavailable(self, error: BaseException) -> Verdict:
        """Return the verdict for an outage, the breaker opened from now, when the failure ended."""
        until = self.breaker.record_failure(timezone.now(), error)
        return Verdict(unavailable_until=until, reason=f"unavailable: {error}")

    def _send(self, events: Sequence[Any]) -> Rejected:
        try:
            self.backend.open()
            return self.backend.send_batch(events)
        finally:
            self._last_call_ended = timezone.now()  # read only once the call's future is done

    def _settle_late_call(self) -> None:
        """Let a call that missed its deadline, and has ended since, tell how the backend is."""
        late = self._late
        if late is None or late.future is None or not late.future.done():
            return
        self._late = None
        error = late.future.exception()
        if error is None:
            self.breaker.record_slow_call(self._last_call_ended - late.started)
            self.breaker.record_success()
        elif isinstance(error, BackendUnavailable):
            self.breaker.pause_again(self._last_call_ended, error)
        # Any other error: its events were deferred anyway, and the next call will tell.


def couriers_for(
    backends: Mapping[str, BaseBackend], config: BroadcasterSettings
) -> dict[str, Courier]:
    """Return a courier for each backend, with a breaker and deadline from ``config``."""
    delays = (config.breaker_base_delay, config.breaker_max_delay, config.send_deadline)
    letters_only = dead_letter_aliases(config)
    return {
        alias: Courier(backend, CircuitBreaker(alias, *delays), alias not in letters_only)
        for alias, backend in backends.items()
    }


def deliver(
    rows: Sequence[ClaimedEvent],
    couriers: Mapping[str, Courier],
    registry: EventRegistry,
    handler_timeout: timedelta | None = None,
) -> list[Outcome]:
    """Deliver ``rows`` to their backends and handlers; return one outcome per row.

    Every backend's share goes out at once, on its courier's stage, while the handlers run, each
    given ``handler_timeout``; then each verdict is awaited until its backend's deadline. Expired
    rows go nowhere (and come back ``expired``); rows past their retries, to their dead letters.
    """
    now = timezone.now()
    outcomes = [
        Outcome(row, list(row.delivered), expired=bool(row.expires_at and row.expires_at <= now))
        for row in rows
    ]
    live = [o for o in outcomes if not o.expired and o.row.retry_count <= o.row.max_retries]
    with delivery_span([outcome.event for outcome in live]):
        calls = letter_calls(outcomes, couriers) if len(live) < len(outcomes) else []
        for alias, courier in couriers.items():
            share = [(o, alias) for o in live if alias not in o.delivered and courier.takes(o.row)]
            if share:
                calls.append((courier, courier.start([o.event for o, _ in share]), share))
        for outcome in (o for o in live if registry.handlers_for(o.event.event_type)):
            inside = functools.partial(_followups_recorded, outcome)
            for name, error in registry.call_handlers(
                outcome.event, listing=outcome.row, inside=inside, timeout=handler_timeout
            ):
                _note_handler(outcome, name, error)
        for courier, call, share in calls:
            _apply_verdict(courier.finish(call), share)
    return outcomes


def _apply_verdict(verdict: Verdict, share: Sequence[tuple[Outcome, str]]) -> None:
    for outcome, name in share:
        error = verdict.error_for(outcome.event.id or "")
        if verdict.unavailable_until is not None:
            outcome.defer(verdict.unavailable_until, name, verdict.reason, verdict.tried)
        elif error is None:
            outcome.delivered.append(name)
        else:
            outcome.errors[name] = describe(error)


@contextlib.contextmanager
def _followups_recorded(outcome: Outcome, handler: str) -> Iterator[Callable[..., None]]:
    """Record the handler's success in its transaction if it published or returned follow-ups."""
    published_before = published_so_far()
    yield publish_returned  # what the handler returns is published before the check below
    if published_so_far() != published_before:
        record_handler_success(outcome, handler)


def _note_handler(outcome: Outcome, handler: str, error: BaseException | None) -> None:
    if error is None:
        outcome.delivered.append(handler)
        return
    if isinstance(error, HandlerBusy):  # not called: no retry spent
        outcome.defer(error.until, handler, describe(error), tried=False)
        return
    outcome.errors[handler] = why = describe(error)
    last = is_last_attempt(outcome.row.retry_count, outcome.row.max_retries)
    level, when = (logging.ERROR, "; no retry left") if last else (logging.WARNING, "")
    logger.log(
        level, "Handler %s failed on %s%s: %s", handler, outcome.event.id, when, why, exc_info=error
    )


def _run(future: Future[T], job: Callable[[], T]) -> None:
    try:
        future.set_result(job())
    except BaseException as exc:  # handed to whoever waits for the future, not lost
        future.set_exception(exc)


@contextlib.contextmanager
def stop_signals_held() -> Iterator[None]:
    """Hold the stop signals back in the block (they are delivered after it)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, MAIN_THREAD_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
