"""Rows waiting for a backend that was down, woken when a batch shows it is back.

An event that a paused backend was not even called for is held well past the backend's trial
(:func:`~django_broadcaster.retry.held_until`). A batch that brings such a backend an event it
had found unavailable shows the backend is back (``Outcome.came_back`` in :mod:`.outcomes`); the
record of that batch then wakes every row still waiting for it (:func:`wake`), so holding costs
no delay once the backend answers.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Collection, Mapping
from datetime import datetime

from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.lookups import Exact

from .models import DestinationEntry, DestinationState, OutboxEvent, Status

#: How many rows one UPDATE wakes (SQLite limits the parameters of a statement).
WAKE_CHUNK = 500


def wake(destinations: Collection[str], now: datetime, database: str) -> int:
    """Make the rows waiting for any of ``destinations`` due at ``now``; return how many.

    A row waits for a destination when it is pending, scheduled after ``now`` and its
    ``delivery`` entry there says ``unavailable``. Rows a worker holds are left alone, and so are
    rows that a destination refused: a wake never brings a spent retry's next attempt forward.
    """
    waiting_for = functools.reduce(operator.or_, (_unavailable_at(name) for name in destinations))
    pending = OutboxEvent.objects.using(database).filter(
        status=Status.PENDING, scheduled_at__gt=now
    )
    candidates = pending.not_held(now).filter(waiting_for).values_list("pk", "delivery")
    ids = [pk for pk, delivery in candidates if not _refused(delivery)]
    woken = 0
    for start in range(0, len(ids), WAKE_CHUNK):
        chunk = pending.not_held(now).filter(pk__in=ids[start : start + WAKE_CHUNK])
        woken += chunk.update(scheduled_at=now)
    return woken


def _unavailable_at(name: str) -> Q:
    state = KeyTextTransform("state", KeyTransform(name, "delivery"))
    return Q(Exact(state, str(DestinationState.UNAVAILABLE)))


def _refused(delivery: Mapping[str, DestinationEntry]) -> bool:
    rejected = str(DestinationState.REJECTED)
    return any(entry.get("state") == rejected for entry in delivery.values())
