"""The models Django looks for in this app, and the names 0.1.1 and 0.2.0 imported from here.

The outbox's table lives in :mod:`django_broadcaster.outbox.models` and the inbox's in
:mod:`django_broadcaster.consumers.inbox`; importing them here is what makes Django find them.
"""

from .consumers.inbox import InboxEntry, InboxStatus
from .outbox.models import (
    EventDataField,
    OutboxEvent,
    OutboxEventQuerySet,
    Status,
    new_event_id,
)

#: 0.1.1's name of :class:`Status`.
OutboxEventStatus = Status

__all__ = [
    "EventDataField",
    "InboxEntry",
    "InboxStatus",
    "OutboxEvent",
    "OutboxEventQuerySet",
    "OutboxEventStatus",
    "Status",
    "new_event_id",
]
