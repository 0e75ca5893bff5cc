"""Eager mode (``BROADCASTER["EAGER"]``): the publishing process delivers its events itself once
the publishing transaction commits, with the worker's own claim, delivery and record.

For development and tests, so that no worker process is needed: the durable path (a worker
claims the rows) stays the default. The rows are claimed by id, under a lease, so a worker that
runs too can never deliver them twice; a delivery that fails is recorded as the worker records
it, and waits for a worker to retry it. The hook is connected only while ``EAGER`` is on.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from typing import Any, Final

from django.db import DatabaseError, router, transaction

from ..backends import create_backends
from ..conf import SETTING_NAME, get_settings, raw_settings
from ..outbox.leases import claim, release
from ..outbox.models import OutboxEvent
from ..outbox.outcomes import prepare
from ..registry import event_registry
from ..signals import event_created
from ..stopping import StopNow
from .delivery import couriers_for, deliver

logger = logging.getLogger(__name__)

_HOOK: Final = "django_broadcaster.eager"
#: The name of the registry's handler thread (``registry._HandlerThread``).
HANDLER_THREAD: Final = "broadcaster-handlers"


def follow_setting(*, setting: str = SETTING_NAME, **kwargs: Any) -> None:
    """Connect the eager hook to ``event_created`` while ``EAGER`` is on, else disconnect it.

    Called when the app is ready and on ``setting_changed``; reads the setting as written, since
    a wrong value is the system checks' to report.
    """
    if setting != SETTING_NAME:
        return
    if raw_settings().get("EAGER") is True:
        event_created.connect(_on_publish, sender=OutboxEvent, dispatch_uid=_HOOK)
    else:
        event_created.disconnect(sender=OutboxEvent, dispatch_uid=_HOOK)


class _Commit:
    """The rows one thread published on one database since its last eager delivery there."""

    def __init__(self) -> None:
        self.ids: list[uuid.UUID] = []
        self.taken: set[uuid.UUID] = set()
        self.over = False  # a callback of it ran after a real commit: later rows start anew


class _OnCommit:
    """The commit callback of one published row.

    After a commit, the first callback to run takes every row of its :class:`_Commit`, so one
    transaction is one claim and one batch; the rows of a rolled-back transaction or savepoint
    among them are simply not found. Run inside a transaction (``captureOnCommitCallbacks``
    in a test), a callback takes its own row only, as ``on_commit`` promises.
    """

    def __init__(self, pk: uuid.UUID, database: str, commit: _Commit) -> None:
        self.pk, self.database, self.commit = pk, database, commit

    def __call__(self) -> None:
        commit = self.commit
        if self.pk in commit.taken:
            return
        if transaction.get_connection(self.database).in_atomic_block:
            ids = [self.pk]
        else:
            ids, commit.over = [pk for pk in commit.ids if pk not in commit.taken], True
        commit.taken.update(ids)
        _deliveries.run(ids)


_commits = threading.local()  # the thread's open _Commit per database alias


def _on_publish(sender: type[OutboxEvent], event: OutboxEvent, **kwargs: Any) -> None:
    database = event._state.db or router.db_for_write(OutboxEvent)
    open_commits: dict[str, _Commit] = _commits.__dict__.setdefault("by_database", {})
    commit = open_commits.get(database)
    if commit is None or commit.over:
        commit = open_commits[database] = _Commit()
    commit.ids.append(event.pk)
    transaction.on_commit(_OnCommit(event.pk, database, commit), using=database)


class _Deliveries:
    """Committed rows waiting for eager delivery, delivered by one thread at a time.

    A handler's follow-ups commit on the handler thread while the delivery that called it
    waits for it; delivering them there would wait for that thread itself, so they queue here
    and the thread delivering now takes them next. With no eager delivery on, follow-ups that
    commit on a handler thread are a worker's (one runs in this process), and are left to it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: deque[list[uuid.UUID]] = deque()
        self._busy = False

    def run(self, ids: list[uuid.UUID]) -> None:
        """Deliver ``ids`` and whatever queues meanwhile, or queue them if a delivery is on."""
        with self._lock:
            if not self._busy and threading.current_thread().name == HANDLER_THREAD:
                return
            self._waiting.append(ids)
            if self._busy:
                return
            self._busy = True
        try:
            while batch := self._next():
                _deliver(batch)
        finally:
            with self._lock:
                self._busy = False
            event_registry.close()  # its thread would hold a database connection until idle

    def _next(self) -> list[uuid.UUID]:
        with self._lock:
            return self._waiting.popleft() if self._waiting else []


_deliveries = _Deliveries()


def _deliver(ids: list[uuid.UUID]) -> None:
    """Claim the rows of ``ids`` still claimable, deliver them and record the outcomes.

    Never raises (but ``StopNow``): the events are committed, so a failure here is logged and
    their rows wait for a worker, as they would have without eager mode.
    """
    config = get_settings()
    try:
        batch = claim(len(ids), config.lease_duration, ids=ids)
    except DatabaseError:
        logger.exception("Eager delivery could not claim %d events; a worker will.", len(ids))
        return
    if not batch.rows:
        return
    couriers = couriers_for(create_backends(), config)
    try:
        outcomes = deliver(batch.rows, couriers, event_registry, config.handler_timeout)
        tally = prepare(outcomes, batch.token, config).write()
        logger.debug("Eager delivery of %d events: %s", len(batch.rows), tally)
    except StopNow:
        release(batch)
        raise
    except Exception:  # the lease runs out and a worker delivers them again
        logger.exception("Eager delivery of %d events failed; a worker will.", len(batch.rows))
    finally:
        for courier in couriers.values():
            courier.close()
