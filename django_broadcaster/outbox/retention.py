"""Retention: delete finished events once they are old, a batch at a time.

Published events are only history once delivered, and the outbox grows without end unless they
are deleted. :func:`delete_old_events` deletes them in batches of ids, each batch its own short
transaction, so no lock is held for long and the worker keeps claiming meanwhile. Age is counted
from ``created_at`` (indexed). ``manage.py outbox_cleanup`` runs it once; a worker runs it a
few batches at a time through :class:`PeriodicCleanup`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, cast

from django.db import router, transaction
from django.utils import timezone

from .models import OutboxEvent, OutboxEventQuerySet, Status

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE: Final = 1000
_AGE = re.compile(r"\s*(\d+)\s*([smhdw])\s*")
_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta:
    """Return the duration written as a number and a unit: ``90s``, ``30m``, ``12h``, ``7d``.

    The units are s, m, h, d and w (weeks). Raises ``ValueError`` naming the accepted forms
    for anything else.
    """
    match = _AGE.fullmatch(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not an age: write a number and a unit, s, m, h, d or w (30m, 12h, 7d)."
        )
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def format_age(age: timedelta) -> str:
    """Return ``age`` as :func:`parse_age` reads it, in the largest whole unit up to days."""
    seconds = int(age.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def old_events(
    older_than: timedelta, *, include_failed: bool = False, now: datetime | None = None
) -> OutboxEventQuerySet:
    """Return the events that :func:`delete_old_events` would delete.

    Those are the published and expired events (and with ``include_failed`` the failed ones)
    created more than ``older_than`` before ``now``.
    """
    statuses = [Status.PUBLISHED, Status.EXPIRED]
    if include_failed:
        statuses.append(Status.FAILED)
    cutoff = (now or timezone.now()) - older_than
    return cast(
        OutboxEventQuerySet, OutboxEvent.objects.filter(status__in=statuses, created_at__lt=cutoff)
    )


def delete_old_events(
    older_than: timedelta,
    *,
    include_failed: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
    now: datetime | None = None,
) -> int:
    """Delete the :func:`old_events` in batches of ``batch_size`` ids; return how many went.

    Each batch is one ``DELETE ... WHERE id IN (...)`` in its own transaction, and deletes a row
    only if it still has a deletable status, so an event requeued meanwhile is kept. It stops
    when no old event is left, or after ``max_batches`` batches. Raises ``ValueError`` when
    ``batch_size`` or ``max_batches`` is not positive.
    """
    if batch_size < 1 or (max_batches is not None and max_batches < 1):
        raise ValueError(
            f"batch_size and max_batches must be at least 1, got {batch_size} and {max_batches}."
        )
    candidates = old_events(older_than, include_failed=include_failed, now=now)
    database = router.db_for_write(OutboxEvent)
    deleted = batches = 0
    while max_batches is None or batches < max_batches:
        ids = list(candidates.order_by("created_at").values_list("pk", flat=True)[:batch_size])
        if ids:
            with transaction.atomic(using=database):
                deleted += candidates.filter(pk__in=ids).delete()[0]
        batches += 1
        if len(ids) < batch_size:
            break
    return deleted


@dataclass
class PeriodicCleanup:
    """Delete old events from a long-running worker, a few batches per call.

    ``older_than`` of ``None`` disables it. Call :meth:`run_if_due` once per cycle of the loop:
    the first call runs at once; a call deletes at most ``batches_per_run`` batches, so the
    loop keeps delivering between them; while old events are left the next call runs again,
    and once none are, the next run waits ``interval``. Several workers may each run it:
    deleting is idempotent.
    """

    older_than: timedelta | None
    interval: timedelta
    include_failed: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE
    batches_per_run: int = 10
    next_run: datetime | None = field(default=None, init=False)

    def is_due(self, now: datetime) -> bool:
        """Return whether a run is due at ``now``."""
        return self.older_than is not None and (self.next_run is None or now >= self.next_run)

    def run_if_due(self, now: datetime) -> int:
        """Delete some old events if a run is due at ``now``; return how many went."""
        if self.older_than is None or not self.is_due(now):
            return 0
        deleted = delete_old_events(
            self.older_than,
            include_failed=self.include_failed,
            batch_size=self.batch_size,
            max_batches=self.batches_per_run,
            now=now,
        )
        more_left = deleted >= self.batch_size * self.batches_per_run
        self.next_run = now if more_left else now + self.interval
        if deleted:
            logger.info("Deleted %d events older than %s.", deleted, format_age(self.older_than))
        return deleted
