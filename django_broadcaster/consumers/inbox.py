"""The inbox: the events a consumer has handled, so that it handles each one once.

Brokers deliver at least once, so a consumer sees some events twice: after a crash between its
commit and its acknowledgement, after a rebalance, or when the outbox re-sends. CloudEvents
defines a duplicate as the same ``source`` and ``id``. The inbox records that pair, unique
together, in the same database transaction as the handler's work::

    with inbox.receive(event) as fresh:
        if fresh:
            Order.objects.create(...)

The record and the work commit together or not at all: a handler that raises leaves no inbox
row, so the event can be retried; a duplicate finds the row and is skipped. Work outside the
database (an e-mail, an HTTP call) is not covered and can still happen twice.

An event whose handlers kept failing is kept as a ``failed`` entry with its payload and error
(a dead letter), which also stops it from being handled when it is delivered again.

CloudEvents sets no length on ``id``, ``source`` or ``type``; the columns hold 255 characters.
A longer value is stored as its start and a SHA-256 of all of it (:func:`stored_key`), so the
same event always finds its row and two events that differ only past the start do not collide.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Final, cast

from django.db import IntegrityError, models, router, transaction
from django.db.models import F
from django.utils import timezone

from ..events import CloudEvent
from ..exceptions import InvalidEvent

#: The length of the ``source``, ``event_id`` and ``event_type`` columns.
KEY_LENGTH: Final = 255


class InboxStatus:
    """What became of a received event: handled, or given up on (a dead letter)."""

    PROCESSED: Final = "processed"
    FAILED: Final = "failed"
    choices: Final = [(PROCESSED, "Processed"), (FAILED, "Failed")]


class InboxEntryQuerySet(models.QuerySet["InboxEntry"]):
    """Queries over the inbox."""

    def failed(self) -> InboxEntryQuerySet:
        """Return the dead letters: events given up on, oldest first."""
        return cast(InboxEntryQuerySet, self.filter(status=InboxStatus.FAILED).order_by("pk"))

    def replayed(self, at: datetime) -> int:
        """Mark these dead letters processed, replayed at ``at``; return how many.

        Call it in the transaction of the replay's work, so that both commit or neither.
        """
        done = {"status": InboxStatus.PROCESSED, "error": "", "payload": "", "replayed_at": at}
        return int(self.filter(status=InboxStatus.FAILED).update(**done))

    def failed_again(self, error: str, at: datetime) -> int:
        """Record that replaying these dead letters at ``at`` failed with ``error``: one more
        attempt each; they stay failed. Return how many."""
        again = {"error": _storable(error), "attempts": F("attempts") + 1, "replayed_at": at}
        return int(self.filter(status=InboxStatus.FAILED).update(**again))

    def of(self, event: CloudEvent) -> InboxEntryQuerySet:
        """Return the entry of ``event``, by its ``source`` and ``id`` as stored (one or none)."""
        entries = self.filter(source=stored_key(event.source), event_id=stored_key(str(event.id)))
        return cast(InboxEntryQuerySet, entries)

    def purge(self, older_than: timedelta) -> int:
        """Delete processed entries received more than ``older_than`` ago; return the count.

        Keep entries for longer than a broker may redeliver an event (the stream's or topic's
        retention), or an old duplicate would be handled again. Dead letters are kept.
        """
        cutoff = timezone.now() - older_than
        old = self.filter(status=InboxStatus.PROCESSED, received_at__lt=cutoff)
        return int(old.delete()[0])


class InboxEntry(models.Model):
    """One event a consumer received, by ``source`` and ``event_id`` (unique together)."""

    source = models.CharField(max_length=KEY_LENGTH)
    event_id = models.CharField(max_length=KEY_LENGTH)
    event_type = models.CharField(max_length=KEY_LENGTH, blank=True)
    status = models.CharField(
        max_length=20, choices=InboxStatus.choices, default=InboxStatus.PROCESSED
    )
    received_at = models.DateTimeField(default=timezone.now)
    error = models.TextField(blank=True, help_text="Failed entries: why the event was given up.")
    payload = models.TextField(
        blank=True,
        help_text="Failed entries: the event (CloudEvents JSON) or raw message.",
    )
    attempts = models.PositiveIntegerField(
        default=0,
        help_text="Failed entries: how often the handlers failed on it, the consumer's attempts "
        "and each replay's (0: not recorded).",
    )
    replayed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the entry was last replayed."
    )

    objects = InboxEntryQuerySet.as_manager()

    class Meta:
        app_label = "django_broadcaster"
        db_table = "broadcaster_inbox"
        verbose_name = "inbox entry"
        verbose_name_plural = "inbox entries"
        constraints = [
            models.UniqueConstraint(fields=["source", "event_id"], name="inbox_source_event_uniq")
        ]
        indexes = [models.Index(fields=["received_at"], name="inbox_received_idx")]

    def __str__(self) -> str:
        return f"{self.source} {self.event_id} ({self.status})"


@contextmanager
def receive(event: CloudEvent, *, using: str | None = None) -> Iterator[bool]:
    """Open a transaction, record ``event`` in the inbox, and yield whether it is new.

    Do the event's work in the ``with`` block only when the value is ``True``. The record and
    the work commit when the block ends and roll back together if it raises. Inside an outer
    transaction the block is a savepoint, and only the outer commit makes it durable. Raises
    :class:`InvalidEvent` if ``event`` has no id.
    """
    database = using or router.db_for_write(InboxEntry)
    with transaction.atomic(using=database):
        yield mark_received(event, using=database)


def process_once(
    event: CloudEvent, handler: Callable[[CloudEvent], object], *, using: str | None = None
) -> bool:
    """Call ``handler(event)`` unless the inbox has the event already; return whether it ran.

    The handler runs in the inbox's transaction (see :func:`receive`); its exception propagates
    after the rollback.
    """
    with receive(event, using=using) as fresh:
        if fresh:
            handler(event)
    return fresh


def mark_received(event: CloudEvent, *, using: str | None = None) -> bool:
    """Insert the processed entry of ``event``; return ``False`` if the inbox has it already.

    Call it in a transaction, with the event's work: :func:`receive` does. Raises
    :class:`InvalidEvent` if ``event`` has no id.
    """
    if event.id is None:
        raise InvalidEvent("The event has no id: the inbox needs source and id to spot duplicates.")
    entry = InboxEntry(
        source=stored_key(event.source),
        event_id=stored_key(event.id),
        event_type=stored_key(event.event_type),
    )
    return _insert(entry, using)


def keep_dead_letter(
    *,
    source: str,
    event_id: str,
    event_type: str = "",
    error: str = "",
    payload: str = "",
    attempts: int = 0,
    using: str | None = None,
) -> bool:
    """Insert a failed entry (a dead letter); return ``False`` if the inbox has that key already.

    ``attempts`` says how often its handlers failed (0: never run, as for an undecodable
    message). ``payload`` keeps the event (or the message as received) so it can be inspected
    or replayed.
    Characters no database stores as text (lone surrogates; NUL, which PostgreSQL refuses) are
    kept in ``error`` and ``payload`` as backslash escapes, JSON's own for a surrogate.
    """
    entry = InboxEntry(
        source=stored_key(source),
        event_id=stored_key(event_id),
        event_type=stored_key(event_type),
        status=InboxStatus.FAILED,
        error=_storable(error),
        payload=_storable(payload),
        attempts=attempts,
    )
    return _insert(entry, using)


def stored_key(value: str) -> str:
    """Return ``value`` as the inbox stores it: itself, or if too long, its start and a hash.

    The result has at most :data:`KEY_LENGTH` characters; the same value always gives the same
    result.
    """
    if len(value) <= KEY_LENGTH:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    marker = f"#sha256:{digest}"
    return value[: KEY_LENGTH - len(marker)] + marker


def _storable(text: str) -> str:
    text = text.replace("\x00", "\\x00")
    return text.encode("utf-8", "backslashreplace").decode()


def _insert(entry: InboxEntry, using: str | None) -> bool:
    """Insert ``entry`` in a savepoint; return ``False`` if its key is taken.

    The savepoint keeps a duplicate from breaking the caller's transaction (PostgreSQL refuses
    every statement after an error until a rollback). A concurrent insert of the same key waits
    for the other transaction: its commit makes this a duplicate, its rollback lets this one in.
    """
    database = using or router.db_for_write(InboxEntry)
    try:
        with transaction.atomic(using=database):
            entry.save(force_insert=True, using=database)
    except IntegrityError:
        taken = InboxEntry.objects.using(database).filter(
            source=entry.source, event_id=entry.event_id
        )
        if taken.exists():
            return False
        raise  # another constraint failed: not a duplicate
    return True
