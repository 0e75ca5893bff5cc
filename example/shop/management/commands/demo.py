"""``manage.py demo``: place orders, deliver their events, and show what happened.

Run ``python manage.py migrate`` first (``scripts/demo`` does both).
"""

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from django_broadcaster.models import OutboxEvent

from ...models import Notification, Order
from ...orders import place_order

ORDERS = [
    ("ada@example.com", Decimal("19.90")),
    ("grace@example.com", Decimal("120.00")),
    ("alan@example.com", Decimal("7.25")),
]


class PaymentDeclined(Exception):
    """Raised by the demo to roll back an order's transaction."""


class Command(BaseCommand):
    help = "Place a few orders, run the outbox worker once, and show the outbox and the handler."

    def handle(self, *args: Any, **options: Any) -> None:
        backends = ", ".join(settings.BROADCASTER["BACKENDS"]) or "none"
        self.step(f"1. Placing {len(ORDERS)} orders (backends: {backends})")
        event_ids = [self.place(customer, total) for customer, total in ORDERS]
        self.rolled_back_order()

        self.step("2. Running the worker: manage.py outbox_worker --burst")
        call_command("outbox_worker", "--burst", stdout=self.stdout)

        self.step("3. The outbox rows of this run")
        self.show_outbox(event_ids)
        self.step("4. What the order.created handler saw")
        self.show_notifications(event_ids)

    def place(self, customer: str, total: Decimal) -> str:
        order, event = place_order(customer, total)
        self.stdout.write(f"   order #{order.pk} {customer} {total}: event {event.pk} written")
        return str(event.pk)

    def rolled_back_order(self) -> None:
        before = (Order.objects.count(), OutboxEvent.objects.count())
        try:
            with transaction.atomic():
                place_order("mallory@example.com", Decimal("999.00"))
                raise PaymentDeclined
        except PaymentDeclined:
            pass
        orders, events = Order.objects.count() - before[0], OutboxEvent.objects.count() - before[1]
        self.stdout.write(
            "   order for mallory@example.com: payment declined, transaction rolled back: "
            f"{orders} orders and {events} events written"
        )

    def show_outbox(self, event_ids: list[str]) -> None:
        rows = list(OutboxEvent.objects.filter(pk__in=event_ids).order_by("created_at"))
        self.stdout.write(f"   {'id':36}  {'type':13}  {'subject':7}  status")
        for row in rows:
            self.stdout.write(
                f"   {row.pk!s:36}  {row.event_type:13}  {row.subject:7}  {row.status}"
            )
        pending = [row for row in rows if row.status != "published"]
        if pending:
            delivered = ", ".join(pending[0].delivered) or "nowhere"
            self.stdout.write(
                self.style.WARNING(
                    f"   {len(pending)} not published. Already delivered to: {delivered}.\n"
                    f"   Last error: {pending[0].last_error}"
                )
            )

    def show_notifications(self, event_ids: list[str]) -> None:
        notifications = Notification.objects.filter(event_id__in=event_ids).order_by("pk")
        for notification in notifications:
            self.stdout.write(f"   {notification.message}")
        if not notifications:
            self.stdout.write("   nothing yet")
        if OutboxEvent.objects.filter(pk__in=event_ids, status="pending").exists():
            self.stdout.write(
                self.style.WARNING(
                    "\nSome events are still pending: is every backend reachable? Start it, then "
                    "deliver them with: python example/manage.py outbox_worker --burst"
                )
            )
        self.stdout.write(
            "\nNext (after . .venv/bin/activate): python example/manage.py runserver, then\n"
            '  curl -d \'{"customer": "ada@example.com", "total": "5.00"}\' '
            "localhost:8000/orders/\n"
            "  python example/manage.py outbox_worker   (Ctrl-C stops it)"
        )

    def step(self, title: str) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(f"\n{title}"))
