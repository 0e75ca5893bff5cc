"""The worker loop: claim a batch, deliver it, record the outcomes, repeat.

The management command ``outbox_worker`` only parses its arguments and runs a :class:`Worker`.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import DatabaseError, close_old_connections, connections
from django.utils import timezone

from .. import metrics
from ..backends import BaseBackend, create_backends
from ..claims import Claim
from ..conf import BroadcasterSettings, get_settings
from ..models import OutboxEvent
from ..registry import EventRegistry, event_registry
from ..retention import PeriodicCleanup
from ..stopping import GracefulStop, StopNow
from .backoff import backoff_delay
from .breaker import CircuitBreaker
from .claiming import Claimer
from .couriers import couriers_for
from .delivery import deliver
from .progress import ProgressReport
from .recording import BatchSummary, Record, prepare
from .stats import WorkerStats
from .wakeup import Wakeup

logger = logging.getLogger(__name__)

#: How many database errors in a row a burst run waits out before it gives up.
BURST_DATABASE_ATTEMPTS = 3


@dataclass
class Worker:
    """Deliver due outbox events until stopped.

    ``burst`` makes :meth:`run` return once nothing is due; ``max_iterations`` (0 for no limit)
    bounds the number of claim cycles. Backends default to ``BROADCASTER["BACKENDS"]``. The worker
    opens backends lazily and closes them when :meth:`run` returns. With ``progress_interval``
    (seconds, 0 for never) it logs the rate and the lag that often.
    """

    config: BroadcasterSettings = field(default_factory=get_settings)
    burst: bool = False
    max_iterations: int = 0
    backends: Mapping[str, BaseBackend] = field(default_factory=create_backends)
    registry: EventRegistry = event_registry
    stats: WorkerStats = field(default_factory=WorkerStats)
    progress_interval: float = 0.0

    def __post_init__(self) -> None:
        self._stopping = threading.Event()
        self._database_failures = 0
        self._draining = False  # the last cycle found work: keep the database connection
        self._held: Record | None = None  # delivered, recorded during the next sends
        self._signals = GracefulStop(self._stopping, self.stop)
        self.claimer = Claimer(
            self.config.batch_size, self.config.lease_duration, self._signals.deferred
        )
        self._progress = ProgressReport(self.progress_interval)
        self.cleanup = PeriodicCleanup(self.config.cleanup_after, self.config.cleanup_interval)
        self.couriers = couriers_for(self.backends, self.config)
        self._record_later = any(b.sends_outlast_records for b in self.backends.values())
        self.wakeup = Wakeup.from_settings(self.config)

    @property
    def breakers(self) -> dict[str, CircuitBreaker]:
        """Return each backend's circuit breaker, by alias."""
        return {alias: courier.breaker for alias, courier in self.couriers.items()}

    def run(self) -> WorkerStats:
        """Run claim cycles until stopped, out of work in burst mode, or at ``max_iterations``."""
        logger.info(
            "Outbox worker started: backends %s, batch size %d.",
            sorted(self.backends) or "none",
            self.config.batch_size,
        )
        iterations = 0
        try:
            while not self._stopping.is_set():
                handled = self._cycle()
                self._progress.maybe_log(
                    self.stats.published, self.stats.retried, self.stats.failed
                )
                iterations += 1
                if self.max_iterations and iterations >= self.max_iterations:
                    break
                if handled is None:
                    continue
                if handled == 0:
                    if self.burst:
                        break
                    self.wakeup.wait(self.config.poll_interval.total_seconds())
        except StopNow:
            logger.warning("Stopped before the batch in hand was done; its events are due again.")
        finally:
            self._record_held_on_exit()
            self.claimer.release_ahead()
            self._signals.cancel_timer()
            self.close()
        logger.info("Outbox worker stopped: %s", self.stats)
        return self.stats

    def run_once(self, *, claim_ahead: bool = False, record_later: bool = False) -> BatchSummary:
        """Claim one batch, deliver it and record the outcomes; return what it ended as.

        With ``claim_ahead`` (as :meth:`run` does), a full batch is delivered while the next
        batch is claimed (see :mod:`.claiming`), which the next call then delivers; :meth:`run`
        releases it (due again, no retry spent) if the worker stops first.

        With ``record_later`` (as :meth:`run` does when a backend's sends outlast a record:
        ``BaseBackend.sends_outlast_records``), a full batch claimed ahead is recorded
        while the next call sends, so that one batch's write overlaps the next one's sends;
        :meth:`record_held` records it sooner, and a call that finds nothing due records it
        first. If the process dies before, its rows are delivered again when the lease ends.
        """
        claim = self.claimer.take()
        if not claim.rows:
            self.record_held()
            return BatchSummary()
        full = len(claim.rows) >= self.config.batch_size
        ahead = claim_ahead and full and not self._stopping.is_set()
        claim_in_line = self.claimer.claim_ahead() if ahead else None
        try:
            outcomes = deliver(
                claim.rows,
                self.couriers,
                self.registry,
                meanwhile=functools.partial(self._meanwhile, claim_in_line),
            )
        except StopNow:
            self.record_held()
            self._release(claim)
            raise
        pending = prepare(outcomes, claim.token, self.config)
        self.stats.add(pending.summary)
        metrics.record_batch(pending.summary)
        logger.debug("Batch of %d: %s", len(claim.rows), pending.summary)
        if record_later and ahead:
            self._held = pending
        else:
            self._write(pending)
        self.claimer.settle()
        return pending.summary

    def record_held(self) -> None:
        """Record the batch that ``run_once(record_later=True)`` left unrecorded, if any.

        Raises ``DatabaseError`` if the write fails; the batch stays held, for the next call
        (its rows stay leased to this worker meanwhile), so that a database restart does not
        send its events again.
        """
        held, self._held = self._held, None
        if held is None:
            return
        try:
            self._write(held)
        except DatabaseError:
            self._held = held
            raise

    def stop(self) -> None:
        """Ask the worker to stop after the batch in hand is recorded."""
        self._stopping.set()
        self.wakeup.interrupt()

    def close(self) -> None:
        """Close every backend, the LISTEN connection and the claim thread (safe to call twice)."""
        self.wakeup.close()
        self.claimer.close()
        for courier in self.couriers.values():
            try:
                courier.close()
            except Exception:
                logger.exception("Closing backend %r failed", courier.alias)

    def install_signal_handlers(self) -> None:
        """Make SIGTERM and SIGINT stop gracefully (call from the main thread).

        The batch in hand is finished and recorded. If that takes longer than
        ``BROADCASTER["SHUTDOWN_TIMEOUT"]``, or a second signal comes, the worker stops at once
        and makes the unrecorded events of the batch due again, so none stays claimed.
        """
        self._signals.install(self.config.shutdown_timeout, "batch")

    def _record_held_on_exit(self) -> None:
        try:
            self.record_held()
        except DatabaseError as exc:  # already leaving, maybe for this very error
            logger.warning(
                "Recording the last batch failed (%s); its events go out again when their "
                "lease ends.",
                exc,
            )

    def _meanwhile(self, claim_in_line: Callable[[], None] | None) -> None:
        """Do what waits for the sends: claim the next batch in line, record the held one."""
        if claim_in_line is not None:
            claim_in_line()
        self.record_held()

    def _write(self, pending: Record) -> None:
        with self._signals.deferred():
            pending.write()

    def _release(self, claim: Claim) -> None:
        """Make the unrecorded rows of ``claim``, cut off mid-batch, due again (no retry spent)."""
        with self._signals.deferred():
            for connection in connections.all():
                connection.close()  # the interrupted call may have left it mid-protocol
            released = OutboxEvent.objects.release(claim)
        logger.warning("Released %d claimed events.", released)

    def _cycle(self) -> int | None:
        """Run one claim cycle; return the rows handled, or None after a database error.

        Database errors are waited out (the database may be restarting), except inside a
        transaction the worker does not own (a test's), and in burst mode after
        ``BURST_DATABASE_ATTEMPTS`` failures in a row: there they are raised.
        """
        in_callers_transaction = any(c.in_atomic_block for c in connections.all())
        if not in_callers_transaction and not self._draining:
            # Between drains only: with CONN_MAX_AGE = 0 this reconnects, which would cost a
            # new PostgreSQL backend for every batch.
            close_old_connections()
        try:
            summary = self.run_once(claim_ahead=True, record_later=self._record_later)
            self.cleanup.run_if_due(timezone.now())
        except DatabaseError as exc:
            self._draining = False
            if in_callers_transaction or (
                self.burst and self._database_failures + 1 >= BURST_DATABASE_ATTEMPTS
            ):
                raise
            self._wait_for_database(exc)
            return None
        self._database_failures = 0
        self._draining = summary.handled > 0
        return summary.handled

    def _wait_for_database(self, error: DatabaseError) -> None:
        self._database_failures += 1
        delay = backoff_delay(
            self._database_failures, self.config.breaker_base_delay, self.config.breaker_max_delay
        )
        logger.warning(
            "Database error (%s); retrying in %.1f s.", error, delay / timedelta(seconds=1)
        )
        for connection in connections.all():
            connection.close_if_unusable_or_obsolete()
        self._stopping.wait(delay.total_seconds())
