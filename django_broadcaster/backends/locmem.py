"""A backend that keeps events in memory, for tests (like Django's locmem mail backend)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..events import CloudEvent
from .base import BaseBackend, Rejections

#: Every event delivered by any :class:`LocMemBackend`, in delivery order.
outbox: list[CloudEvent] = []


class LocMemBackend(BaseBackend):
    """Append each delivered event to the module-level list :data:`outbox`.

    The package's pytest plugin empties it before each test; a Django ``TestCase`` calls
    ``outbox.clear()`` in ``setUp()``. :attr:`events` holds this instance's events only.
    """

    def __init__(self, alias: str, **options: Any) -> None:
        super().__init__(alias, **options)
        self.events: list[CloudEvent] = []

    def send_batch(self, events: Sequence[CloudEvent]) -> Rejections:
        """Keep ``events``; refuse none."""
        self.events.extend(events)
        outbox.extend(events)
        return {}
