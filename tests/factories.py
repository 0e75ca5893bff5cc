"""Events for tests, built the way the outbox would build them."""

import uuid
from typing import Any

from django.utils import timezone

from django_broadcaster.events import CloudEvent


def published_event(**overrides: Any) -> CloudEvent:
    """Return a CloudEvent with an id and a time, as the worker hands to backends."""
    fields: dict[str, Any] = {
        "event_type": "com.example.order.created",
        "source": "https://shop.example.com/orders",
        "data": {"order": 42, "items": ["a", "b"], "total": 9.5},
        "id": str(uuid.uuid4()),
        "time": timezone.now(),
    }
    return CloudEvent(**{**fields, **overrides})


def delivered_to(*names: str) -> dict[str, dict[str, Any]]:
    """Return a ``delivery`` in which each of ``names`` has the event."""
    return {name: {"state": "delivered", "attempts": 1} for name in names}


def named_backends(*aliases: str) -> dict[str, Any]:
    """Return the columns of a row whose publisher named ``aliases``: ``backends=[...]``."""
    pending = {alias: {"state": "pending", "attempts": 0} for alias in aliases}
    return {"backends": list(aliases), "delivery": pending}
