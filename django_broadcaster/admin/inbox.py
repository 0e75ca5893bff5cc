"""A read-only admin for the inbox: find received events and dead letters, replay dead letters.

Entries are never edited or added by hand (the inbox is what keeps events from being handled
twice). Replaying needs the model's ``change`` permission: "Replay selected dead letters" on the
list, and "Replay this group" on the dead-letter groups page (``.../inboxentry/failures/``).
A replay runs the handlers of ``consumer_registry`` in the web process, for each entry once
(:mod:`~django_broadcaster.consumers.replay`); for thousands, use ``manage.py consume_replay``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from django.contrib import admin, messages
from django.http import HttpRequest
from django.urls import URLPattern
from django.utils.safestring import SafeString

from ..consumers.base import default_registry
from ..consumers.inbox import InboxEntry, InboxEntryQuerySet, InboxStatus
from ..consumers.replay import Replayed, dead_letter_groups, in_dead_letter_group, replay
from ..exceptions import BroadcasterImproperlyConfigured
from ..fingerprints import FailureGroup
from .failures import GroupActions, error_start, failure_urls, has_model_permission
from .filters import FailureFilter

if TYPE_CHECKING:
    InboxAdminBase = admin.ModelAdmin[InboxEntry]
else:  # ModelAdmin is not subscriptable at run time
    InboxAdminBase = admin.ModelAdmin


class DeadLetterFilter(FailureFilter):
    """Dead letters of one group (``failure``: its fingerprint)."""

    def ids(self, queryset: Any, fingerprint: str) -> list[Any]:
        return in_dead_letter_group(queryset, fingerprint)


class DeadLetterGroups(GroupActions):
    """Dead letters by event type (or where an undecodable message was read), error class and
    message; replay runs each one's handlers once more."""

    title: ClassVar[str] = "Dead-letter groups"
    where: ClassVar[str] = "event type or origin"
    help: ClassVar[str] = (
        "Dead letters grouped by event type (or, for a message that could not be decoded, where "
        "it was read), the error's class and its message with numbers, ids, quoted values and "
        "times taken out. Replay runs each one's handlers once more, in one transaction with its "
        "entry: it becomes processed, or stays failed with the new error. Times are UTC."
    )

    def groups(self) -> list[FailureGroup]:
        return dead_letter_groups()

    def replay(self, request: HttpRequest, fingerprint: str) -> tuple[str, int]:
        failed = InboxEntry.objects.failed()
        return replay_entries(failed.filter(pk__in=in_dead_letter_group(failed, fingerprint)))


@admin.register(InboxEntry)
class InboxEntryAdmin(InboxAdminBase):
    """List and inspect inbox entries; replay dead letters."""

    list_display = [
        "event_id",
        "received_at",
        "status",
        "event_type",
        "source",
        "attempts",
        "short_error",
    ]
    list_filter = ["status", "event_type", DeadLetterFilter]
    search_fields = ["=event_id", "event_type"]
    date_hierarchy = "received_at"
    show_full_result_count = False
    actions = ["replay_selected"]

    class Media:
        css = {"all": ["django_broadcaster/admin.css"]}

    def get_urls(self) -> list[URLPattern]:
        """Return the model's admin URLs, after the dead-letter groups' (``.../failures/``)."""
        return [*failure_urls(self, DeadLetterGroups()), *super().get_urls()]

    def get_readonly_fields(self, request: HttpRequest, obj: InboxEntry | None = None) -> list[str]:
        """Return every field: entries are never edited by hand."""
        return [field.name for field in self.opts.concrete_fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: InboxEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: InboxEntry | None = None) -> bool:
        return False

    def has_retry_permission(self, request: HttpRequest) -> bool:
        """Return whether the user may replay dead letters: the model's ``change`` permission."""
        return has_model_permission(request, self.opts, "change")

    def has_discard_permission(self, request: HttpRequest) -> bool:
        """Return ``False``: a dead letter is what keeps its event from being handled again."""
        return False

    @admin.display(description="error")
    def short_error(self, obj: InboxEntry) -> SafeString:
        """Return the start of the error; the whole text shows on pointing at it."""
        return error_start(obj.error)

    @admin.action(description="Replay selected dead letters", permissions=["retry"])
    def replay_selected(self, request: HttpRequest, queryset: InboxEntryQuerySet) -> None:
        """Replay the selected dead letters; processed entries are left alone."""
        self.message_user(request, *replay_entries(queryset.filter(status=InboxStatus.FAILED)))


def replay_entries(entries: Iterable[InboxEntry]) -> tuple[str, int]:
    """Replay ``entries`` with the consumers' handlers; return a message and its level."""
    try:
        registry = default_registry()
    except BroadcasterImproperlyConfigured as exc:
        return str(exc), messages.ERROR
    outcomes = Counter(replay(entry, registry) for entry in entries)
    counts = ", ".join(f"{outcomes[result]} {result.value}" for result in Replayed)
    level = messages.WARNING if outcomes[Replayed.FAILED] else messages.SUCCESS
    return f"Replayed {outcomes.total()} dead letters: {counts}.", level
