"""A read-mostly admin for the outbox: find events, see where they went, retry or discard them;
a dashboard (:mod:`.dashboard`) shows each destination's state, the failures and the last hour.

Rows are never edited by hand: a save could overwrite what a worker just recorded. Two actions
change them, each behind a model permission: "retry now" needs ``change_outboxevent`` and
"discard" needs ``delete_outboxevent``. Django's own delete action and delete page are off,
because they would delete events a worker is delivering.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from ..conf import get_settings
from ..outbox.deliveries import configured_destinations, delivery_states
from ..outbox.models import OutboxEvent, OutboxEventQuerySet, Status
from ..routing import parse_routes
from .chart import chart
from .dashboard import dashboard
from .failures import error_start, failure_urls, has_model_permission
from .filters import DestinationFilter, FailureFilter, NotDeliveredFilter
from .inbox import InboxEntryAdmin as InboxEntryAdmin  # registers the inbox's admin
from .outbox_groups import OutboxGroups

if TYPE_CHECKING:
    ModelAdmin = admin.ModelAdmin[OutboxEvent]
else:  # ModelAdmin is not subscriptable at run time
    ModelAdmin = admin.ModelAdmin


@admin.register(OutboxEvent)
class OutboxEventAdmin(ModelAdmin):
    """List and inspect outbox events; retry or discard them in bulk."""

    # Created at comes early, so that it stays in sight when the columns after it do not fit.
    list_display = [
        "short_id",
        "created",
        "coloured_status",
        "event_type",
        "subject",
        "scheduled",
        "retry_count",
        "short_error",
    ]
    list_filter = [
        "status",
        "event_type",
        "source",
        DestinationFilter,
        NotDeliveredFilter,
        FailureFilter,
    ]
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

    class Media:
        css = {"all": ["django_broadcaster/admin.css"]}

    def get_urls(self) -> list[URLPattern]:
        """Return the model's admin URLs, after the dashboard's (``.../outboxevent/dashboard/``)
        and the failure groups' (``.../outboxevent/failures/``)."""
        view = self.admin_site.admin_view(self.dashboard_view)
        name = f"{self.opts.app_label}_{self.opts.model_name}_dashboard"
        return [
            path("dashboard/", view, name=name),
            *failure_urls(self, OutboxGroups()),
            *super().get_urls(),
        ]

    def dashboard_view(self, request: HttpRequest) -> TemplateResponse:
        """Render the dashboard; raise ``PermissionDenied`` without the model's view permission."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        figures = dashboard()
        changelist = reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_changelist"
        )
        context = {
            **self.admin_site.each_context(request),
            "title": "Outbox dashboard",
            "opts": self.opts,
            "media": self.media,
            "dashboard": figures,
            "chart": chart(figures.minutes),
            "changelist": changelist,
            "routes": parse_routes(get_settings().routes)[0],  # a bad rule: manage.py check
        }
        return TemplateResponse(request, "admin/django_broadcaster/dashboard.html", context)

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
        return has_model_permission(request, self.opts, "change")

    def has_discard_permission(self, request: HttpRequest) -> bool:
        """Return whether the user may discard events: the model's ``delete`` permission."""
        return has_model_permission(request, self.opts, "delete")

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

    @admin.display(description="id", ordering="id")
    def short_id(self, obj: OutboxEvent) -> SafeString:
        """Return the id's last eight characters; the whole id shows on pointing at them.

        Not the first eight: ids are UUIDv7, whose first eight are the same for every event of
        the same minute or so; the last are random.
        """
        return format_html(
            '<span class="broadcaster-id" title="{}">&hellip;{}</span>', obj.id, str(obj.id)[-8:]
        )

    @admin.display(description="created at", ordering="created_at")
    def created(self, obj: OutboxEvent) -> SafeString:
        """Return when the event was created, short (``2026-12-07 14:50:03``)."""
        return _moment(obj.created_at)

    @admin.display(description="scheduled at", ordering="scheduled_at")
    def scheduled(self, obj: OutboxEvent) -> SafeString:
        """Return when a worker may next claim the event, short."""
        return _moment(obj.scheduled_at)

    @admin.display(description="status", ordering="status")
    def coloured_status(self, obj: OutboxEvent) -> SafeString:
        """Return the status word on its colour (the word says it; the colour helps to scan)."""
        return format_html(
            '<span class="broadcaster-status broadcaster-{}">{}</span>', obj.status, obj.status
        )

    @admin.display(description="last error")
    def short_error(self, obj: OutboxEvent) -> SafeString:
        """Return the start of ``last_error``; the whole text shows on pointing at it."""
        return error_start(obj.last_error)

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
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (s.destination, s.state, s.attempts, s.at.isoformat() if s.at else "", s.error)
                + (s.dead_letter,)
                for s in states
            ),
        )
        return format_html(
            "<table><thead><tr><th>destination</th><th>state</th><th>attempts</th>"
            "<th>last attempt</th><th>last error</th><th>dead letter to</th></tr></thead>"
            "<tbody>{}</tbody></table>",
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


def _moment(value: datetime) -> SafeString:
    """Return ``value`` in the current time zone to the second, all of it on pointing at it."""
    exact = value.isoformat()
    shown = f"{timezone.localtime(value):%Y-%m-%d %H:%M:%S}"
    return format_html('<time datetime="{}" title="{}">{}</time>', exact, exact, shown)
