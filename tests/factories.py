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
