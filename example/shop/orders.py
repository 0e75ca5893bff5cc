"""Placing an order: the one code path shared by the view and the demo command."""

from decimal import Decimal

from django.db import transaction

from django_broadcaster.models import OutboxEvent
from django_broadcaster.publishers import publisher

from .models import Order

EVENT_SOURCE = "https://shop.example.com/orders"


def place_order(customer: str, total: Decimal) -> tuple[Order, OutboxEvent]:
    """Create an order and publish ``order.created``; return the order and its outbox row.

    Both rows are written in one transaction: either the order exists and its event will be
    delivered, or neither exists. Called inside an outer ``transaction.atomic()``, this becomes a
    savepoint, and rolling back the outer transaction discards the event too.
    """
    with transaction.atomic():
        order = Order.objects.create(customer=customer, total=total)
        event = publisher.publish_event(
            "order.created",
            source=EVENT_SOURCE,
            subject=str(order.pk),
            # Event data must be JSON: the Decimal total travels as a string.
            data={"order_id": order.pk, "customer": order.customer, "total": str(order.total)},
            # Kafka uses it as the message key, so one order's events stay in order.
            partition_key=f"order-{order.pk}",
        )
    return order, event
