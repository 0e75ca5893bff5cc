"""``manage.py outbox_cleanup``: delete old published events, a batch at a time."""

from __future__ import annotations

from argparse import ArgumentTypeError
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...outbox.models import OutboxEvent
from ...outbox.retention import (
    DEFAULT_BATCH_SIZE,
    delete_old_events,
    format_age,
    old_events,
    parse_age,
)
from ..migrated import require_migrated


class Command(BaseCommand):
    help = (
        "Delete published events created longer ago than --older-than (30m, 12h, 7d, 2w), "
        "in batches of ids, each its own short transaction, so the worker is never blocked "
        "for long. Pending events are never deleted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            required=True,
            type=_age,
            metavar="AGE",
            help="Delete events created more than AGE ago: a number and s, m, h, d or w (7d).",
        )
        parser.add_argument(
            "--include-failed",
            action="store_true",
            help="Delete failed events of that age too (default: keep them for inspection).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Only count the events that would be deleted.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            metavar="N",
            help=f"Ids per DELETE statement (default: {DEFAULT_BATCH_SIZE}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        require_migrated(OutboxEvent, "outbox")
        older_than: timedelta = options["older_than"]
        what = "published or failed" if options["include_failed"] else "published"
        if options["dry_run"]:
            count = old_events(older_than, include_failed=options["include_failed"]).count()
            self.stdout.write(
                f"Would delete {count:,} {what} events older than {format_age(older_than)}."
            )
            return
        deleted = delete_old_events(
            older_than, include_failed=options["include_failed"], batch_size=options["batch_size"]
        )
        self.stdout.write(f"Deleted {deleted:,} {what} events older than {format_age(older_than)}.")


def _age(text: str) -> timedelta:
    try:
        return parse_age(text)
    except ValueError as exc:
        raise ArgumentTypeError(str(exc)) from exc
