"""The consumer handler of the events the shop receives by webhook (SHOP_BROADCASTER=webhook).

The receiving view at ``/webhooks/`` verifies each request and calls it once per event, through
the inbox; ``shop/apps.py`` imports this module only when the webhook backend is chosen.
"""

import logging

from django_broadcaster.events import CloudEvent
from django_broadcaster.registry import consumer_registry

logger = logging.getLogger(__name__)


@consumer_registry.register("order.created")
def log_received_order(event: CloudEvent) -> None:
    """Log the received order: the work a second service would do with it."""
    logger.warning(
        "Received %s %s by webhook: order #%s", event.type, event.id, event.data["order_id"]
    )
