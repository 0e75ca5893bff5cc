"""Local handlers: the worker calls them with each delivered event.

A handler receives the immutable CloudEvent. It runs in its own transaction; if it raises, its
database writes roll back and the worker retries the event for this handler only.
"""

import logging

from django_broadcaster.events import CloudEvent
from django_broadcaster.registry import event_registry

from .models import Notification

logger = logging.getLogger(__name__)


@event_registry.register("order.created")
def notify_customer(event: CloudEvent) -> None:
    """Queue an order confirmation, once per event id (delivery is at least once)."""
    data = event.data
    notification, created = Notification.objects.get_or_create(
        event_id=event.id,
        defaults={
            "order_id": data["order_id"],
            "message": f"Thanks {data['customer']}, order #{data['order_id']} "
            f"({data['total']}) is confirmed.",
        },
    )
    if created:
        logger.info("Queued notification %s for event %s", notification.pk, event.id)
    else:
        logger.info("Event %s was delivered before; nothing to do", event.id)
