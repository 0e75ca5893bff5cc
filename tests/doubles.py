"""Backends that misbehave on purpose, for tests of the worker's failure handling."""

from __future__ import annotations

from typing import Any

from django_broadcaster.backends.base import BaseBackend
from django_broadcaster.events import CloudEvent
from django_broadcaster.exceptions import BackendUnavailable, EventRejected

#: Calls to every test double, as (alias, event id), in order.
calls: list[tuple[str, str]] = []


class RejectingBackend(BaseBackend):
    """Refuse events whose data has ``"reject": true``; accept the rest."""

    def send(self, event: CloudEvent) -> None:
        calls.append((self.alias, str(event.id)))
        if isinstance(event.data, dict) and event.data.get("reject"):
            raise EventRejected("too large for this broker", destination=self.alias)


class UnavailableBackend(BaseBackend):
    """Fail every batch as if the broker were down, while ``down`` is true."""

    down = True

    def __init__(self, alias: str, **options: Any) -> None:
        super().__init__(alias, **options)

    def send(self, event: CloudEvent) -> None:
        calls.append((self.alias, str(event.id)))
        if UnavailableBackend.down:
            raise BackendUnavailable("connection refused", destination=self.alias)
