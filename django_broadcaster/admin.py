"""A read-mostly admin for the outbox: find events, see where they went, retry or discard them.

Rows are never edited by hand: a save could overwrite what a worker just recorded. Two actions
change them, each behind a model permission: "retry now" needs ``change_outboxevent`` and
"discard" needs ``delete_outboxevent``. Django's own delete action and delete page are off,
because they would delete events a worker is delivering.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from .outbox.deliveries import (
    Destination,
    awaiting,
    bound_for,
    configured_destinations,
    delivery_states,
)
from .outbox.models import OutboxEvent, OutboxEventQuerySet, Status

if TYPE_CHECKING:
    ModelAdmin = admin.ModelAdmin[OutboxEvent]
else:  # ModelAdmin is not subscriptable at run time
    ModelAdmin = admin.ModelAdmin


class DestinationFilter(admin.SimpleListFilter):
    """Events bound for one destination: a configured backend alias or a registered handler."""

    title = "destination"
    parameter_name = "destination"

    def condition(self, destination: Destination) -> Q:
        """Return the condition this filter applies for ``destination``."""
        return bound_for(destination)

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(d.name, d.name) for d in configured_destinations()]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        chosen = {d.name: d for d in configured_destinations()}.get(self.value() or "")
        return queryset if chosen is None else queryset.filter(self.condition(chosen))


class NotDeliveredFilter(DestinationFilter):
    """Events bound for one destination that it has not accepted yet."""

    title = "not yet delivered to"
    parameter_name = "not_delivered_to"

    def condition(self, destination: Destination) -> Q:
        return awaiting(destination)


@admin.register(OutboxEvent)
class OutboxEventAdmin(ModelAdmin):
    """List and inspect outbox events; retry or discard them in bulk."""

    list_display = ["id", "event_type", "source", "status", "retry_count", "created_at"]
    list_filter = ["status", "event_type", "source", DestinationFilter, NotDeliveredFilter]
    search_fields = ["event_type"]  # and the id: see get_search_results()
    search_help_text = "An event id (exact), or part of an event type."
    date_hierarchy = "created_at"
    show_full_result_count = False  # one COUNT(*) over the whole outbox is enough
    actions = ["retry_now", "discard"]
    readonly_fields = [
        "id",
        "event_type",
        "source",
        "subject",
        "time",
        "data_content_type",
        "data_schema",
        "pretty_data",
        "extensions",
        "partition_key",
        "status",
        "destinations",
        "last_error",
        "retry_count",
        "max_retries",
        "created_at",
        "scheduled_at",
        "leased_until",
        "published_at",
        "backends",
    ]
    exclude = ["data", "delivery", "lease_token"]

    def get_readonly_fields(
        self, request: HttpRequest, obj: OutboxEvent | None = None
    ) -> list[str]:
        """Return every field, in :attr:`readonly_fields` order then any other model field."""
        listed = list(self.readonly_fields)
        hidden = {*listed, *(self.exclude or ())}
        return listed + [f.name for f in self.opts.concrete_fields if f.name not in hidden]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: OutboxEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: OutboxEvent | None = None) -> bool:
        return False

    def has_retry_permission(self, request: HttpRequest) -> bool:
        """Return whether the user may retry events: the model's ``change`` permission."""
        return self._has_model_permission(request, "change")

    def has_discard_permission(self, request: HttpRequest) -> bool:
        """Return whether the user may discard events: the model's ``delete`` permission."""
        return self._has_model_permission(request, "delete")

    def get_search_results(
        self, request: HttpRequest, queryset: Any, search_term: str
    ) -> tuple[Any, bool]:
        """Find an event by its id through the primary key; search event types otherwise.

        Django's own ``=id`` search compares the id as text, which no index serves.
        """
        try:
            event_id = uuid.UUID(search_term.strip())
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(pk=event_id), False

    @admin.display(description="data")
    def pretty_data(self, obj: OutboxEvent) -> SafeString:
        """Return the event's data as indented JSON."""
        return format_html("<pre>{}</pre>", json.dumps(obj.data, indent=2, sort_keys=True))

    @admin.display(description="delivery")
    def destinations(self, obj: OutboxEvent) -> SafeString:
        """Return a table of the event's state with each destination (its ``delivery``)."""
        states = delivery_states(obj, configured_destinations())
        if not states:
            return format_html("<p>{}</p>", "No destination is configured for this event.")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (s.destination, s.state, s.attempts, s.at.isoformat() if s.at else "", s.error)
                for s in states
            ),
        )
        return format_html(
            "<table><thead><tr><th>destination</th><th>state</th><th>attempts</th>"
            "<th>last attempt</th><th>last error</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.action(description="Retry selected events now", permissions=["retry"])
    def retry_now(self, request: HttpRequest, queryset: OutboxEventQuerySet) -> None:
        """Make the selected failed or waiting events due now, with their retries restored."""
        selected = queryset.count()
        requeued = queryset.retry_now()
        level = messages.SUCCESS if requeued else messages.WARNING
        self.message_user(
            request,
            f"{requeued} of {selected} selected events will be retried now"
            + ("." if requeued == selected else "; published and in-flight events were skipped."),
            level,
        )

    @admin.action(
        description="Discard selected events (delete unpublished ones)", permissions=["discard"]
    )
    def discard(self, request: HttpRequest, queryset: OutboxEventQuerySet) -> None:
        """Delete the selected events that are not published and not being delivered."""
        selected = queryset.count()
        discardable = queryset.exclude(status=Status.PUBLISHED).not_held(timezone.now())
        deleted, _ = discardable.delete()
        level = messages.SUCCESS if deleted else messages.WARNING
        self.message_user(
            request,
            f"Discarded {deleted} of {selected} selected events"
            + ("." if deleted == selected else "; published and in-flight events were kept."),
            level,
        )

    def _has_model_permission(self, request: HttpRequest, action: str) -> bool:
        codename = get_permission_codename(action, self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")
