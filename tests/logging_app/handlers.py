"""A local handler that logs at INFO through ``logging.getLogger(__name__)``, as in a project."""

import logging

from django_broadcaster.events import CloudEvent
from django_broadcaster.registry import event_registry

from . import ORDER_TYPE

logger = logging.getLogger(__name__)


@event_registry.register(ORDER_TYPE)
def log_the_order(event: CloudEvent) -> None:
    """Say which order arrived."""
    logger.info("Order %s received", event.data["order"])
