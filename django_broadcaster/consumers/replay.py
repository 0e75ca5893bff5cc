"""Replaying the inbox's dead letters: each one's handlers run once more, in the inbox.

A dead letter is grouped, like an outbox failure, by
:func:`~django_broadcaster.fingerprints.failure_kind` of where it failed (its event type, or for
a message that could not be decoded, where it was read: ``redis:orders``) and its error. A
replay decodes the entry's payload again (:func:`~.decoding.decode_dead_letter`) and runs the
registry's handlers of its type in one transaction with the entry, which it locks and turns
``processed``: the work and the entry commit together, so each dead letter is handled once,
even when two replays race. A replay that fails leaves the entry failed, with the new error,
one more attempt and ``replayed_at``. A database outage is not a failure of the handlers: it is
raised, and the entry is left as it was.

An entry kept under a message's position (``redis:orders`` and ``1700000000-0``) is the event's
only record under that key; its replay also records the event under its own ``source`` and
``id``, and runs no handler if that record exists already (the event was handled meanwhile).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime

from django.db import router, transaction
from django.utils import timezone

from ..fingerprints import Failure, FailureGroup, failure_kind, group
from ..registry import EventRegistry
from ..stopping import StopNow
from .decoding import decode_dead_letter
from .inbox import InboxEntry, InboxEntryQuerySet, InboxStatus, mark_received, stored_key
from .processing import all_handlers, describe, is_outage


class Replayed(enum.Enum):
    """What a replay made of one dead letter."""

    PROCESSED = "processed"  # the handlers ran and committed; the entry is processed
    FAILED = "failed"  # they (or decoding) failed again; the entry stays a dead letter
    GONE = "gone"  # no longer a dead letter: replayed or discarded meanwhile


def dead_letter_failure(entry: InboxEntry) -> Failure:
    """Return the failure a dead letter records (its group, error and last time seen)."""
    where = entry.event_type or entry.source
    return Failure(failure_kind(where, entry.error), str(entry.pk), entry.error, _seen(entry))


def dead_letter_groups(entries: Iterable[InboxEntry] | None = None) -> list[FailureGroup]:
    """Return the groups of ``entries`` (default: every dead letter), the largest first."""
    chosen = InboxEntry.objects.failed() if entries is None else entries
    return group(dead_letter_failure(entry) for entry in chosen)


def in_dead_letter_group(entries: InboxEntryQuerySet, fingerprint: str) -> list[int]:
    """Return the ids of the dead letters among ``entries`` in the group ``fingerprint``."""
    failed = entries.filter(status=InboxStatus.FAILED).only("event_type", "source", "error")
    return [e.pk for e in failed if dead_letter_failure(e).kind.fingerprint == fingerprint]


def replay(entry: InboxEntry, registry: EventRegistry, *, using: str | None = None) -> Replayed:
    """Run the handlers of the dead letter ``entry`` once more; return what became of it.

    Raises the database's ``OperationalError`` or ``InterfaceError`` when it cannot be reached
    (nothing is recorded then), and ``StopNow``.
    """
    database = using or router.db_for_write(InboxEntry)
    entries = InboxEntry.objects.using(database).filter(pk=entry.pk)
    now = timezone.now()
    try:
        with transaction.atomic(using=database):
            locked = entries.select_for_update().filter(status=InboxStatus.FAILED)
            if not locked.exists():
                return Replayed.GONE
            _run(entry, registry, database)
            locked.replayed(now)
    except StopNow:
        raise
    except Exception as exc:  # a handler's or the decoder's, whatever it raised
        if is_outage(exc):
            raise
        entries.failed_again(describe(exc), now)
        return Replayed.FAILED
    return Replayed.PROCESSED


def _run(entry: InboxEntry, registry: EventRegistry, database: str) -> None:
    """Decode the entry and run its handlers, unless its event is recorded under its own key."""
    event = decode_dead_letter(entry)
    own_key = (entry.source, entry.event_id) == (
        stored_key(event.source),
        stored_key(str(event.id)),
    )
    if not own_key and not mark_received(event, using=database):
        return  # handled meanwhile under its own key: the position's entry is done too
    handlers = registry.handlers_for(event.event_type)
    all_handlers(handlers, registry.predicates)(event)


def _seen(entry: InboxEntry) -> datetime:
    return entry.replayed_at or entry.received_at
