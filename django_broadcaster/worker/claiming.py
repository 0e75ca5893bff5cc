"""The worker's claims: the batch in hand, and the next one, claimed while this one is delivered.

While a full batch is delivered and recorded, the worker claims its next batch. On PostgreSQL
that claim runs on a thread of its own, with a database connection of its own, and starts as soon
as the batch in hand is taken: its waits for the database overlap the batch's sends and its
record. Elsewhere, and inside a caller's transaction (whose rows another connection cannot see),
the next batch is claimed in line, while the batch's sends are in flight: SQLite takes one writer
at a time, so a second connection would only queue behind the first.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, connections

from ..claims import Claim
from ..models import OutboxEvent
from ..stopping import MAIN_THREAD_SIGNALS

logger = logging.getLogger(__name__)

#: How long :meth:`Claimer.close` waits for the claim thread to close its connection.
CLOSE_TIMEOUT_S = 5.0


class Claimer:
    """Claim batches of up to ``batch_size`` rows under ``lease`` for one worker.

    :meth:`take` returns the batch claimed ahead, or claims one; :meth:`claim_ahead` starts
    claiming the next batch and :meth:`settle` waits for it. Claims made on the calling thread
    run inside ``deferred()`` (the worker's, which holds stop signals back). When the worker
    stops, call :meth:`release_ahead`, then :meth:`close`.
    """

    def __init__(
        self,
        batch_size: int,
        lease: timedelta,
        deferred: Callable[[], AbstractContextManager[Any]] = nullcontext,
    ) -> None:
        self.batch_size = batch_size
        self.lease = lease
        self._deferred = deferred
        self._ahead: Future[Claim] | None = None
        self._thread: ThreadPoolExecutor | None = None

    def take(self) -> Claim:
        """Return the batch claimed ahead if it has rows; otherwise claim a batch now.

        Raises ``DatabaseError`` if the claim made now fails (a failed claim ahead is logged).
        """
        claim = self.settle()
        self._ahead = None
        if claim is not None:
            return claim
        with self._deferred():
            return self._claim()

    def claim_ahead(self) -> Callable[[], None] | None:
        """Start claiming the next batch; return what the caller must run meanwhile, if anything.

        On PostgreSQL, outside a transaction, the claim starts on the claim thread and ``None``
        is returned. Otherwise the returned function claims in line when called (while the
        batch's sends are in flight).
        """
        connection = connections[OutboxEvent.objects.db]
        if connection.vendor != "postgresql" or connection.in_atomic_block:
            return self._claim_in_line
        if self._thread is None:
            self._thread = ThreadPoolExecutor(
                1, thread_name_prefix="broadcaster-claims", initializer=_block_stop_signals
            )
        self._ahead = self._thread.submit(self._claim_on_thread)
        return None

    def settle(self) -> Claim | None:
        """Wait for the claim ahead, if any; return it if it leased rows, else ``None``.

        A ``DatabaseError`` is logged, not raised: the batch in hand is still recorded, and the
        next :meth:`take` claims again.
        """
        if self._ahead is None:
            return None
        try:
            claim = self._ahead.result()
        except DatabaseError as exc:
            logger.warning("Claiming the next batch early failed (%s).", exc)
            claim = None
        if claim is None or not claim.rows:
            self._ahead = None
            return None
        return claim

    def release_ahead(self) -> None:
        """Make the batch claimed ahead, if any, due again: nothing of it was sent."""
        claim = self.settle()
        self._ahead = None
        if claim is None:
            return
        try:
            with self._deferred():
                released = OutboxEvent.objects.release(claim)
        except DatabaseError as exc:  # the lease ends on its own; do not hide why the loop ended
            logger.warning("Could not release %d events claimed ahead (%s).", len(claim.rows), exc)
            return
        logger.info("Released %d events claimed ahead.", released)

    def close(self) -> None:
        """Close the claim thread's database connection and end the thread (safe to call twice).

        Waits up to ``CLOSE_TIMEOUT_S`` for a claim still running on the thread.
        """
        thread, self._thread = self._thread, None
        if thread is None:
            return
        closed = thread.submit(connections.close_all)
        thread.shutdown(wait=False)
        try:
            closed.result(timeout=CLOSE_TIMEOUT_S)
        except FuturesTimeout:  # a hung claim: its connection ends with the process
            logger.warning("The claim thread did not close its database connection in time.")

    def _claim(self) -> Claim:
        claim: Claim = OutboxEvent.objects.claim(self.batch_size, self.lease)
        return claim

    def _claim_in_line(self) -> None:
        ahead: Future[Claim] = Future()
        try:
            with self._deferred():
                ahead.set_result(self._claim())
        except DatabaseError as exc:
            ahead.set_exception(exc)
        self._ahead = ahead

    def _claim_on_thread(self) -> Claim:
        try:
            claim = self._claim()
        except DatabaseError:
            for connection in connections.all():  # this thread's: reconnect if it is broken
                connection.close_if_unusable_or_obsolete()
            raise
        if len(claim.rows) < self.batch_size:  # the drain ends: hold no idle connection
            connections.close_all()
        return claim


def _block_stop_signals() -> None:
    # Only the main thread runs Python's signal handlers: a stop signal delivered to this thread
    # would wake no one (see couriers._CallThread).
    signal.pthread_sigmask(signal.SIG_BLOCK, MAIN_THREAD_SIGNALS)
