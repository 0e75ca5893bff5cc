"""``manage.py consume_replay``: run chosen dead letters of the inbox through their handlers."""

from __future__ import annotations

from collections import Counter
from typing import Any, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...consumers.base import default_registry
from ...consumers.inbox import InboxEntry, InboxEntryQuerySet
from ...consumers.replay import Replayed, in_dead_letter_group, replay
from ...exceptions import BroadcasterImproperlyConfigured
from ...registry import EventRegistry
from ..migrated import require_migrated
from ..selection import add_selection_arguments, confirmed, time_range
from ._consuming import add_registry_argument, registry_option


class Command(BaseCommand):
    help = (
        "Replay dead letters of the inbox: run each one's handlers once more, in one transaction "
        "with its entry, which becomes processed, or stays failed with the new error. Prints how "
        "many match, and changes nothing without --yes (exit status 1) or with --dry-run (0)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--type", dest="event_type", metavar="TYPE", help="Only this type.")
        add_registry_argument(parser)
        add_selection_arguments(parser, when="dead letters received", doing="replay")

    def handle(self, *args: Any, **options: Any) -> None:
        require_migrated(InboxEntry, "inbox")
        explicit = registry_option(options["registry"])  # a bad path fails before any count
        entries = list(_chosen(options))
        if confirmed(self, len(entries), "dead letters", options):
            registry = explicit or _default_registry()
            outcomes = Counter(replay(entry, registry) for entry in entries)
            counts = ", ".join(f"{outcomes[result]} {result.value}" for result in Replayed)
            self.stdout.write(f"{counts}.")


def _default_registry() -> EventRegistry:
    try:
        return default_registry()
    except BroadcasterImproperlyConfigured as exc:
        raise CommandError(str(exc)) from exc


def _chosen(options: dict[str, Any]) -> InboxEntryQuerySet:
    """Return the dead letters the options choose."""
    entries = InboxEntry.objects.failed().filter(**time_range(options, "received_at"))
    if options["event_type"]:
        entries = entries.filter(event_type=options["event_type"])
    if options["group"] is not None:
        entries = entries.filter(pk__in=in_dead_letter_group(entries, options["group"]))
    return cast(InboxEntryQuerySet, entries)
