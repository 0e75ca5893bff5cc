"""Send each backend's share of a batch on a thread of its own, and stop waiting for a slow one.

A backend that has not answered within ``SEND_DEADLINE`` counts as unavailable for the batch in
hand: its events are deferred (no retry spent) and its circuit breaker opens, while the call goes
on in the background. The backend gets no new call until that one has ended; its result then
settles the breaker. So a broker that hangs costs the other destinations one deadline per trial,
not one client timeout per batch.

A call that ends well after the deadline means the backend is slow rather than down: the deadline
doubles, so a slow but healthy backend is waited for instead of being deferred forever.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from ..backends.base import BaseBackend
from ..conf import BroadcasterSettings
from ..events import CloudEvent
from ..exceptions import BackendUnavailable
from ..stopping import MAIN_THREAD_SIGNALS
from .backoff import backoff_delay
from .breaker import CircuitBreaker

logger = logging.getLogger(__name__)

Rejected = Mapping[str, BaseException]


@dataclass(frozen=True)
class Verdict:
    """What a backend made of its share of a batch.

    When ``unavailable_until`` is set, the backend took none of the events (or cannot be known to
    have): they wait until then, for ``reason``. Otherwise ``rejected`` maps the id of each event
    the backend refused to why, and ``failed`` is an unexpected error that refused them all.
    """

    rejected: Rejected = field(default_factory=dict)
    unavailable_until: datetime | None = None
    reason: str = ""
    failed: BaseException | None = None

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
    """Carry batches to one backend, on a thread of its own, with a circuit breaker.

    The backend's client is only ever used from that thread, one call at a time. Call
    :meth:`close` when done: it closes the backend, without waiting for a call still running.
    """

    def __init__(self, backend: BaseBackend, breaker: CircuitBreaker, deadline: timedelta) -> None:
        self.backend = backend
        self.breaker = breaker
        self.deadline = deadline
        self._thread = _CallThread(f"broadcaster-{backend.alias}")
        self._late: Call | None = None
        self._last_call_ended = timezone.now()

    @property
    def alias(self) -> str:
        """Return the backend's alias."""
        return self.backend.alias

    def start(self, events: Sequence[CloudEvent]) -> Call:
        """Start sending ``events``, or decide at once that the backend cannot take them now."""
        now = timezone.now()
        self._settle_late_call()
        if self._late is not None:
            failures = max(self.breaker.failures, 1)
            pause = backoff_delay(failures, self.breaker.base, self.breaker.cap)
            busy = Verdict(unavailable_until=now + pause, reason="still busy with a late call")
            return Call(now, len(events), verdict=busy)
        if self.breaker.is_open(now):
            paused = Verdict(unavailable_until=self.breaker.open_until, reason="backend paused")
            return Call(now, len(events), verdict=paused)
        return Call(now, len(events), future=self._thread.submit(self._send, list(events)))

    def finish(self, call: Call) -> Verdict:
        """Wait for ``call`` until the deadline and return the verdict.

        A call still running at the deadline makes the backend unavailable; it goes on in the
        background and is settled by a later :meth:`start`.
        """
        if call.verdict is not None:
            return call.verdict
        assert call.future is not None
        remaining = (call.started + self.deadline - timezone.now()).total_seconds()
        try:
            rejected = call.future.result(timeout=max(remaining, 0.0))
        except FutureTimeout:
            self._late = call
            error = TimeoutError(f"timeout: no answer within {self.deadline.total_seconds():g} s")
            until = self.breaker.record_failure(timezone.now(), error)
            return Verdict(unavailable_until=until, reason=f"unavailable: {error}")
        except BackendUnavailable as exc:
            # A failure can take as long as the backend's timeout: pause from when it ended.
            until = self.breaker.record_failure(timezone.now(), exc)
            return Verdict(unavailable_until=until, reason=f"unavailable: {exc}")
        except Exception as exc:  # a bug or an unexpected error: every event of the call failed
            logger.exception("Backend %r failed on a batch of %d events", self.alias, call.events)
            return Verdict(failed=exc)
        self.breaker.record_success()
        return Verdict(rejected=rejected)

    def close(self) -> None:
        """Stop the courier's thread and close the backend (safe to call twice)."""
        self._thread.stop()
        if self._late is not None and not _done(self._late):
            logger.warning("Closing backend %r while a late call is still running.", self.alias)
        self.backend.close()

    def _send(self, events: list[CloudEvent]) -> Rejected:
        try:
            self.backend.open()
            return self.backend.send_batch(events)
        finally:
            self._last_call_ended = timezone.now()  # read only once the call's future is done

    def _settle_late_call(self) -> None:
        """Let a call that missed its deadline, and has ended since, tell how the backend is."""
        late = self._late
        if late is None or not _done(late):
            return
        self._late = None
        assert late.future is not None
        error = late.future.exception()
        ended = self._last_call_ended
        if error is None:
            self._wait_longer(ended - late.started)
            self.breaker.record_success()
        elif isinstance(error, BackendUnavailable):
            self.breaker.pause_again(ended, error)
        # Any other error: its events were deferred anyway, and the next call will tell.

    def _wait_longer(self, took: timedelta) -> None:
        self.deadline = max(self.deadline * 2, took * 2)
        logger.warning(
            "Backend %r took %.1f s for a batch; waiting up to %.1f s for it from now on.",
            self.alias,
            took.total_seconds(),
            self.deadline.total_seconds(),
        )


def couriers_for(
    backends: Mapping[str, BaseBackend], config: BroadcasterSettings
) -> dict[str, Courier]:
    """Return a courier for each backend, with a circuit breaker and deadline from ``config``."""
    return {
        alias: Courier(
            backend,
            CircuitBreaker(alias, config.breaker_base_delay, config.breaker_max_delay),
            config.send_deadline,
        )
        for alias, backend in backends.items()
    }


def _done(call: Call) -> bool:
    return call.future is None or call.future.done()


class _CallThread:
    """One daemon thread that runs submitted calls in order, in the submitter's context.

    A daemon, so that a call stuck on a frozen broker never keeps the process from exiting.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._calls: queue.SimpleQueue[tuple[Future[Rejected], Callable[[], Rejected]] | None]
        self._calls = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def submit(
        self, function: Callable[[list[CloudEvent]], Rejected], events: list[CloudEvent]
    ) -> Future[Rejected]:
        """Queue ``function(events)`` and return its future."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        future: Future[Rejected] = Future()
        context = contextvars.copy_context()
        self._calls.put((future, lambda: context.run(function, events)))
        return future

    def stop(self) -> None:
        """Let the thread end after the call in hand (safe to call twice)."""
        if self._thread is not None:
            self._calls.put(None)
            self._thread = None

    def _run(self) -> None:
        # The kernel hands a process's signal to any thread that does not block it, and only
        # the main thread runs Python handlers: a stop signal landing here would leave the main
        # thread asleep until its wait timed out.
        signal.pthread_sigmask(signal.SIG_BLOCK, MAIN_THREAD_SIGNALS)
        while (item := self._calls.get()) is not None:
            future, call = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as exc:  # handed to the waiting worker, not lost
                future.set_exception(exc)
