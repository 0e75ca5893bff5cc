"""``manage.py outbox_requeue``: put failed events back to pending, with their retries restored."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...outbox.models import OutboxEvent, Status
from ..migrated import require_migrated


class Command(BaseCommand):
    help = (
        "Put failed outbox events back to pending, due now and with their retries restored. "
        "Without event ids or filters, every failed event is requeued."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ids", nargs="*", metavar="EVENT_ID", help="Requeue only these events.")
        parser.add_argument("--type", dest="event_type", metavar="TYPE", help="Only this type.")
        parser.add_argument("--source", metavar="SOURCE", help="Only events from this source.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be requeued; change nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        require_migrated(OutboxEvent, "outbox")
        events = OutboxEvent.objects.filter(status=Status.FAILED)
        if options["ids"]:
            events = events.filter(pk__in=[_event_id(value) for value in options["ids"]])
        if options["event_type"]:
            events = events.filter(event_type=options["event_type"])
        if options["source"]:
            events = events.filter(source=options["source"])
        if options["dry_run"]:
            self.stdout.write(f"Would requeue {events.count()} failed events.")
            return
        self.stdout.write(f"Requeued {events.retry_now()} failed events.")


def _event_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise CommandError(f"{value!r} is not an event id (a UUID).") from exc
