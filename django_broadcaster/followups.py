"""Follow-up events: what a handler publishes commits with the record of the handler's success.

The worker runs each handler in its own transaction. When the handler published events there,
the worker records, in that same transaction, that the handler is done for this event. So either
both the follow-up events and that record commit, or neither does: a worker that dies after the
handler ran does not make the next worker run it again and publish its follow-ups twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar

from .claims import ClaimedEvent
from .exceptions import BroadcasterError
from .models import OutboxEvent

_published: ContextVar[int] = ContextVar("django_broadcaster_published", default=0)


class LeaseLost(BroadcasterError):
    """The worker no longer holds the event (its lease ran out and another worker took it)."""


def note_published(count: int) -> None:
    """Count ``count`` events just written by the publisher in this context."""
    _published.set(_published.get() + count)


def published_so_far() -> int:
    """Return how many events the publisher has written in this context."""
    return _published.get()


def record_handler_success(row: ClaimedEvent, delivered: Sequence[str]) -> None:
    """Store ``delivered`` on ``row`` now, inside the caller's transaction.

    Raises :class:`LeaseLost` if the worker's lease on ``row`` is gone, so that the caller's
    transaction (the handler's writes and follow-up events) rolls back.
    """
    updated = OutboxEvent.objects.filter(pk=row.pk, lease_token=row.lease_token).update(
        delivered=list(delivered)
    )
    if not updated:
        raise LeaseLost(f"event {row.pk} is no longer held by this worker")
