"""Tests of the example shop: ``python example/manage.py test shop``."""

import json
from decimal import Decimal

from django.db import transaction
from django.test import TestCase, TransactionTestCase, override_settings

from django_broadcaster.backends import locmem
from django_broadcaster.models import OutboxEvent
from django_broadcaster.testing import captured_events, run_worker

from .handlers import notify_customer
from .models import Notification, Order
from .orders import place_order

LOCMEM = {"BACKENDS": {"default": {"BACKEND": "django_broadcaster.backends.LocMemBackend"}}}


class PublishingTests(TestCase):
    """Publishing only writes rows, so TestCase (one transaction per test) is fine."""

    def test_the_view_publishes_order_created(self) -> None:
        with captured_events() as events:
            response = self.client.post(
                "/orders/",
                json.dumps({"customer": "ada@example.com", "total": "5.00"}),
                content_type="application/json",
            )
        self.assertEqual(response.status_code, 201)
        [event] = events.assert_published("order.created", data__contains={"total": "5.00"})
        self.assertEqual(event.id, response.json()["event_id"])

    def test_a_rolled_back_order_publishes_nothing(self) -> None:
        with self.assertRaises(RuntimeError), transaction.atomic():
            place_order("mallory@example.com", Decimal("1.00"))
            raise RuntimeError("payment declined")
        self.assertFalse(Order.objects.exists())
        self.assertFalse(OutboxEvent.objects.exists())


@override_settings(BROADCASTER=LOCMEM)
class DeliveryTests(TransactionTestCase):
    """The worker commits its own transactions: run it in a TransactionTestCase, not TestCase."""

    def setUp(self) -> None:
        locmem.outbox.clear()

    def test_the_event_reaches_the_backend_and_the_handler(self) -> None:
        order, row = place_order("ada@example.com", Decimal("19.90"))
        self.assertEqual(run_worker().published, 1)
        [event] = locmem.outbox
        self.assertEqual(event.id, str(row.pk))
        self.assertEqual(
            event.data, {"order_id": order.pk, "customer": "ada@example.com", "total": "19.90"}
        )
        self.assertEqual(Notification.objects.get().order, order)

    def test_the_handler_notifies_once_per_event(self) -> None:
        _, row = place_order("ada@example.com", Decimal("19.90"))
        run_worker()
        notify_customer(row.as_cloud_event())  # a redelivery of the same event
        self.assertEqual(Notification.objects.count(), 1)
