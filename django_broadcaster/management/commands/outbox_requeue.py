"""``manage.py outbox_requeue``: put chosen failed (or waiting) events back to due now."""

from __future__ import annotations

import uuid
from typing import Any, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...outbox.failures import in_group, not_delivered_at
from ...outbox.models import OutboxEvent, OutboxEventQuerySet, Status
from ..migrated import require_migrated
from ..selection import add_selection_arguments, confirmed, time_range

#: The statuses a requeue may take events from: a published or expired event is not sent again.
STATUSES = [str(Status.FAILED), str(Status.PENDING)]


class Command(BaseCommand):
    help = (
        "Put chosen outbox events back to pending, due now and with their retries restored; each "
        "goes again only to the destinations that have not accepted it. Prints how many events "
        "match, and changes nothing without --yes (exit status 1) or with --dry-run (exit 0)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ids", nargs="*", metavar="EVENT_ID", help="Only these events.")
        parser.add_argument("--type", dest="event_type", metavar="TYPE", help="Only this type.")
        parser.add_argument("--source", metavar="SOURCE", help="Only events from this source.")
        parser.add_argument(
            "--destination",
            metavar="NAME",
            help="Only events this destination refused or could not be reached for.",
        )
        parser.add_argument(
            "--status",
            action="append",
            choices=STATUSES,
            help="Take events of this status (repeatable; default: failed).",
        )
        add_selection_arguments(parser, when="events created", doing="requeue")

    def handle(self, *args: Any, **options: Any) -> None:
        require_migrated(OutboxEvent, "outbox")
        events = _chosen(options)
        if confirmed(self, events.count(), "events", options):
            self.stdout.write(f"Requeued {events.retry_now()} events.")


def _chosen(options: dict[str, Any]) -> OutboxEventQuerySet:
    """Return the events the options choose; raise ``CommandError`` for a bad id or range."""
    events = OutboxEvent.objects.filter(status__in=options["status"] or [Status.FAILED])
    events = events.filter(**time_range(options, "created_at"))
    filters = {
        "pk__in": [_event_id(value) for value in options["ids"]] or None,
        "event_type": options["event_type"],
        "source": options["source"],
    }
    events = events.filter(**{name: value for name, value in filters.items() if value})
    if options["destination"]:
        events = events.filter(not_delivered_at(options["destination"]))
    if options["group"] is not None:
        events = events.filter(pk__in=in_group(events, options["group"]))
    return cast(OutboxEventQuerySet, events)


def _event_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise CommandError(f"{value!r} is not an event id (a UUID).") from exc
