"""The consumers' handlers: record each event handled (see :class:`.models.Handled`)."""

from django_broadcaster.events import CloudEvent
from django_broadcaster.registry import consumer_registry

from . import ORDER_STEPS
from .models import Handled


def record(event: CloudEvent) -> None:
    """Write a :class:`Handled` row; it commits with the event's inbox row or not at all."""
    Handled.objects.create(
        event_id=event.id,
        event_type=event.type,
        partition_key=event.extensions.get("partitionkey", ""),
    )


for _step in ORDER_STEPS:
    consumer_registry.register(_step)(record)
