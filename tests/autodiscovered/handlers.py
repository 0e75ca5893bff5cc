"""Imported by ``BroadcasterConfig.ready()``, never by a test directly."""

from django_broadcaster.events import CloudEvent
from django_broadcaster.registry import event_registry

received: list[CloudEvent] = []


@event_registry.register("tests.autodiscovered")
def on_autodiscovered(event: CloudEvent) -> None:
    """Keep the event."""
    received.append(event)
