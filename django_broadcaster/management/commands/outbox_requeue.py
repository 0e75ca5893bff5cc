"""``manage.py outbox_requeue``: put chosen failed (or waiting) events back to due now."""

from __future__ import annotations

import uuid
from typing import Any, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...fingerprints import is_fingerprint
from ...outbox.failures import in_group, not_delivered_at
from ...outbox.models import OutboxEvent, OutboxEventQuerySet, Status
from ..arguments import moment
from ..migrated import require_migrated

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
        parser.add_argument("--group", metavar="FINGERPRINT", help="Only this failure group.")
        parser.add_argument("--type", dest="event_type", metavar="TYPE", help="Only this type.")
        parser.add_argument("--source", metavar="SOURCE", help="Only events from this source.")
        parser.add_argument(
            "--destination",
            metavar="NAME",
            help="Only events this destination refused or could not be reached for.",
        )
        parser.add_argument(
            "--since", type=moment, metavar="WHEN", help="Only events created at or after this."
        )
        parser.add_argument(
            "--until", type=moment, metavar="WHEN", help="Only events created before this."
        )
        parser.add_argument(
            "--status",
            action="append",
            choices=STATUSES,
            help="Take events of this status (repeatable; default: failed).",
        )
        confirm = parser.add_mutually_exclusive_group()
        confirm.add_argument("--yes", action="store_true", help="Requeue them.")
        confirm.add_argument(
            "--dry-run", action="store_true", help="Only count them; change nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        require_migrated(OutboxEvent, "outbox")
        events = _chosen(options)
        count = events.count()
        self.stdout.write(f"{count} events match.")
        if count == 0 or options["dry_run"]:
            return
        if not options["yes"]:
            raise CommandError(
                f"Nothing changed: pass --yes to requeue these {count} events, "
                "or --dry-run to only count them."
            )
        self.stdout.write(f"Requeued {events.retry_now()} events.")


def _chosen(options: dict[str, Any]) -> OutboxEventQuerySet:
    """Return the events the options choose; raise ``CommandError`` for options that clash."""
    since, until = options["since"], options["until"]
    if since and until and since >= until:
        raise CommandError(f"--since ({since:%Y-%m-%d %H:%M}) must be before --until.")
    events = OutboxEvent.objects.filter(status__in=options["status"] or [Status.FAILED])
    filters = {
        "pk__in": [_event_id(value) for value in options["ids"]] or None,
        "event_type": options["event_type"],
        "source": options["source"],
        "created_at__gte": since,
        "created_at__lt": until,
    }
    events = events.filter(**{name: value for name, value in filters.items() if value})
    if options["destination"]:
        events = events.filter(not_delivered_at(options["destination"]))
    if options["group"] is not None:
        events = events.filter(pk__in=in_group(events, _fingerprint(options["group"])))
    return cast(OutboxEventQuerySet, events)


def _fingerprint(value: str) -> str:
    if not is_fingerprint(value):
        raise CommandError(
            f"--group {value!r} is not a failure group's fingerprint: 12 hex digits, as "
            "`manage.py outbox_status --failures` lists them."
        )
    return value


def _event_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise CommandError(f"{value!r} is not an event id (a UUID).") from exc
