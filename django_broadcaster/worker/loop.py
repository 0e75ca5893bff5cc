"""The worker: a pipeline of three stages, run until stopped (``outbox_worker`` runs one).

Each cycle claims due rows (:mod:`django_broadcaster.outbox.leases`), delivers them
(:func:`~.delivery.deliver`) and records the outcomes (:mod:`django_broadcaster.outbox.outcomes`).
Draining full batches on PostgreSQL, it claims the next and records the last during the delivery,
on one database thread (a :class:`~.delivery.Stage`); short batches, other databases and a
caller's transaction (its rows unseen by other connections) run them in line."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future

from django.db import DatabaseError, close_old_connections, connections, router
from django.utils import timezone

from .. import telemetry
from ..backends import BaseBackend, create_backends
from ..conf import BroadcasterSettings, get_settings
from ..outbox.floors import Floor
from ..outbox.leases import Claim, claim, release
from ..outbox.models import OutboxEvent
from ..outbox.outcomes import Record, prepare
from ..outbox.retention import PeriodicCleanup
from ..registry import EventRegistry, event_registry
from ..retry import CircuitBreaker, backoff_delay
from ..stopping import GracefulStop, StopNow
from ..telemetry import Tally
from .delivery import Stage, T, couriers_for, deliver, stop_signals_held
from .progress import ProgressReport, WorkerStats, destinations
from .wakeup import Wakeup

logger = logging.getLogger(__name__)

#: How many database errors in a row a burst run waits out before it gives up.
BURST_DATABASE_ATTEMPTS = 3
#: How long closing waits for a stage's thread to close its database connection.
CLOSE_WAIT_S = 5.0


class Worker:
    """Deliver due outbox events until stopped.

    ``config`` defaults to ``BROADCASTER``, ``backends`` to the configured ones (opened lazily,
    closed when :meth:`run` returns), ``registry`` to the global one. ``burst`` makes :meth:`run`
    return once nothing is due; ``max_iterations`` (0: no limit) bounds the cycles;
    ``progress_interval`` (seconds, 0: never) sets how often it measures the lag, and logs it
    with the rate if anything changed (:class:`~.progress.ProgressReport`); ``overlap``
    puts claims and records on a thread (``True``) or in line (``False``) whatever the database.
    """

    def __init__(
        self,
        config: BroadcasterSettings | None = None,
        *,
        burst: bool = False,
        max_iterations: int = 0,
        backends: Mapping[str, BaseBackend] | None = None,
        registry: EventRegistry | None = None,
        progress_interval: float = 0.0,
        overlap: bool | None = None,
    ) -> None:
        self.config = config or get_settings()
        self.burst, self.max_iterations = burst, max_iterations
        self.backends = create_backends() if backends is None else backends
        self.registry = event_registry if registry is None else registry
        self.stats = WorkerStats()
        self.couriers = couriers_for(self.backends, self.config)
        self.cleanup = PeriodicCleanup(self.config.cleanup_after, self.config.cleanup_interval)
        self.wakeup = Wakeup.from_settings(self.config)
        self._overlap = overlap
        self._database: Stage | None = None  # claims ahead and records: made on first use
        self._in_line, self._resting = Stage("broadcaster-in-line", 0), True
        self._ahead: Future[Claim] | None = None  # the next batch, claimed during this one
        self._floor = Floor()  # where claims ahead start reading the due index
        self._unwritten: Record | None = None  # handed to the record stage, not yet written
        self._writing: Future[Tally] | None = None
        self._stopping = threading.Event()
        self._signals = GracefulStop(self._stopping, self.stop)
        self._progress = ProgressReport(progress_interval, self.registry)
        self._database_failures = 0
        self._draining = False  # the last cycle found work: keep the database connection

    @property
    def breakers(self) -> dict[str, CircuitBreaker]:
        """Return each backend's circuit breaker, by alias."""
        return {alias: courier.breaker for alias, courier in self.couriers.items()}

    def run(self) -> WorkerStats:
        """Run cycles until stopped, out of work in burst mode, or at ``max_iterations``."""
        described = destinations(self.backends, self.registry)
        logger.info("Outbox worker started, batches of %d. %s", self.config.batch_size, described)
        iterations = 0
        try:
            while not self._stopping.is_set():
                handled = self._cycle()
                self._progress.maybe_log(self.stats)
                iterations += 1
                if self.max_iterations and iterations >= self.max_iterations:
                    break
                if handled == 0:
                    if self.burst:
                        break
                    self.wakeup.wait(self.config.poll_interval.total_seconds())
        except StopNow:
            logger.warning("Stopped before the batch in hand was done; its events are due again.")
        finally:
            self.close()
        logger.info("Outbox worker stopped after %d batches: %s.", self.stats.batches, self.stats)
        return self.stats

    def run_once(self) -> Tally:
        """Claim one batch, deliver it and record the outcomes; return what they were. A full batch
        has the next one claimed for the next call (:meth:`close` gives it back)."""
        tally = self._step()
        self.flush()
        return tally

    def flush(self) -> None:
        """Wait until every batch handed to the record stage is written; raise ``DatabaseError``
        if a write failed (the record is kept, its rows still leased, and written first by the
        next call, so that a database restart does not resend its events)."""
        if self._unwritten is None:
            return
        if self._writing is None:  # it failed: write it again
            unwritten = self._unwritten
            self._writing = self._in_line.submit(lambda: _reconnecting(unwritten.write))
        try:
            self._writing.result()
        except DatabaseError:
            self._writing = None
            raise
        self._unwritten = self._writing = None

    def stop(self) -> None:
        """Ask the worker to stop after the batch in hand is recorded."""
        self._stopping.set()
        self.wakeup.interrupt()

    def close(self) -> None:
        """Give back the batch claimed ahead, write the last record, and close the backends, the
        LISTEN connection, the stages' threads and the handler thread; safe to call twice."""
        ahead = self._settle_ahead()
        try:
            if ahead is not None:
                logger.info("Released %d events claimed ahead.", release(ahead))
            self.flush()
        except DatabaseError as exc:  # the leases end on their own; do not hide why we stopped
            logger.warning("Could not finish the last batch (%s); its events go out again.", exc)
        self._signals.cancel_timer()
        self.wakeup.close()
        self.registry.close(wait_s=CLOSE_WAIT_S)
        if self._database is not None:
            self._resting = False
            self._rest(self._database)
            self._database.close(wait_s=CLOSE_WAIT_S)
        for courier in self.couriers.values():
            try:
                courier.close()
            except Exception:
                logger.exception("Closing backend %r failed", courier.alias)

    def install_signal_handlers(self) -> None:
        """Make SIGTERM and SIGINT stop gracefully (call from the main thread): the batch in hand
        is finished and recorded. After ``BROADCASTER["SHUTDOWN_TIMEOUT"]``, or at a second
        signal, the worker stops at once and makes the batch's unrecorded events due again."""
        self._signals.install(self.config.shutdown_timeout, "batch")

    def _step(self) -> Tally:
        """Claim a batch, deliver it and hand its outcomes to the record stage; return them."""
        database = self._pipeline()
        batch = self._take()
        if not batch.rows and self._unwritten is not None:
            self.flush()  # the record may make the next events of its rows' keys claimable
            batch = self._take()
        if not batch.rows:
            self.flush()  # nothing due: let the last record land before going idle
            self._rest(database)
            return Tally()
        full = len(batch.rows) >= self.config.batch_size
        if full and not self._stopping.is_set():
            self._ahead, self._resting = database.submit(lambda: self._claim(batch)), False
        try:
            outcomes = deliver(
                batch.rows, self.couriers, self.registry, self.config.handler_timeout
            )
        except StopNow:
            self._release(batch)
            raise
        record = prepare(outcomes, batch.token, self.config)
        self.stats.add(record.tally)
        self.stats.batches += 1
        telemetry.count_batch(record.tally.as_dict())
        logger.debug("Batch of %d: %s", len(batch.rows), record.tally)
        self.flush()
        self._unwritten = record
        # A short batch ends the drain: with no next batch to overlap, it is written in line.
        stage = database if full else self._in_line
        self._writing = stage.submit(lambda: _reconnecting(record.write))
        self._resting = self._resting and stage is self._in_line
        return record.tally

    def _pipeline(self) -> Stage:
        """Return the database stage: one thread for claims and records (two threads cost more
        CPU per event than they gained, docs/performance.md), two jobs deep, or in line."""
        if self._database is None:
            overlap = self._overlap
            if overlap is None:
                connection = connections[router.db_for_write(OutboxEvent)]
                overlap = connection.vendor == "postgresql" and not connection.in_atomic_block
            self._database = Stage("broadcaster-database", 2 * overlap)
        return self._database

    def _claim(self, in_hand: Claim | None = None) -> Claim:
        """Claim a batch in line, or ahead (from the floor) while ``in_hand`` is delivered."""
        limit, lease = self.config.batch_size, self.config.lease_duration
        if in_hand is None:
            return _reconnecting(lambda: claim(limit, lease))
        return _reconnecting(lambda: self._floor.claim_ahead(limit, lease, in_hand))

    def _rest(self, database: Stage) -> None:
        """Close the database thread's connection when a drain that used it ends."""
        if not self._resting and database.depth:
            database.submit(connections.close_all)
        self._resting = True

    def _take(self) -> Claim:
        """Return the batch claimed ahead if it has rows, else claim one now in line, stop signals
        held (so that no batch is leased without the loop knowing it)."""
        with stop_signals_held():
            return self._settle_ahead() or self._in_line.submit(self._claim).result()

    def _settle_ahead(self) -> Claim | None:
        """Wait for the batch claimed ahead; return it if it has rows (a failure is only logged)."""
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return None
        try:
            batch = ahead.result()
        except DatabaseError as exc:
            logger.warning("Claiming the next batch early failed (%s).", exc)
            return None
        return batch if batch.rows else None

    def _release(self, batch: Claim) -> None:
        """Make the rows of ``batch``, cut off mid-delivery, due again (no retry spent)."""
        for connection in connections.all():
            connection.close()  # the interrupted call may have left it mid-protocol
        logger.warning("Released %d claimed events.", release(batch))

    def _cycle(self) -> int | None:
        """Run one cycle; return the rows handled, or ``None`` after a database error, which is
        waited out (the database may be restarting) but raised in a caller's transaction (a
        test's) and in burst mode after ``BURST_DATABASE_ATTEMPTS`` in a row."""
        in_callers_transaction = any(c.in_atomic_block for c in connections.all())
        if not in_callers_transaction and not self._draining:
            close_old_connections()  # between drains only: it may mean reconnecting
        try:
            tally = self._step()
            if self.cleanup.is_due(timezone.now()):
                self.flush()  # so that what the batch finished can go too
                self.cleanup.run_if_due(timezone.now())
        except DatabaseError as exc:
            self._draining = False
            given_up = self.burst and self._database_failures + 1 >= BURST_DATABASE_ATTEMPTS
            if in_callers_transaction or given_up:
                raise
            self._wait_for_database(exc)
            return None
        self._database_failures = 0
        self._draining = tally.handled > 0
        return tally.handled

    def _wait_for_database(self, error: DatabaseError) -> None:
        self._database_failures += 1
        base, cap = self.config.breaker_base_delay, self.config.breaker_max_delay
        delay = backoff_delay(self._database_failures, base, cap).total_seconds()
        logger.warning("Database error (%s); retrying in %.1f s.", error, delay)
        _close_broken_connections()
        self._stopping.wait(delay)


def _reconnecting(job: Callable[[], T]) -> T:
    """Run ``job``; if it fails, close this thread's broken connections: the next try reconnects."""
    try:
        return job()
    except DatabaseError:
        _close_broken_connections()
        raise


def _close_broken_connections() -> None:
    for connection in connections.all():
        connection.close_if_unusable_or_obsolete()
