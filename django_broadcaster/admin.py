"""A read-mostly admin for the outbox: find events, see where they went and why they failed."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from django.contrib import admin
from django.utils.html import format_html
from django.utils.safestring import SafeString

from .models import OutboxEvent

if TYPE_CHECKING:
    ModelAdmin = admin.ModelAdmin[OutboxEvent]
else:  # ModelAdmin is not subscriptable at run time
    ModelAdmin = admin.ModelAdmin


@admin.register(OutboxEvent)
class OutboxEventAdmin(ModelAdmin):
    """List and inspect outbox events. Rows are written by the publisher, never by hand."""

    list_display = ["id", "event_type", "source", "status", "retry_count", "created_at"]
    list_filter = ["status", "event_type", "source"]
    search_fields = ["=id", "event_type"]
    date_hierarchy = "created_at"
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
        "status",
        "created_at",
        "scheduled_at",
        "published_at",
        "retry_count",
        "max_retries",
        "backends",
        "delivered",
        "last_error",
    ]
    exclude = ["data", "lease_token"]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: OutboxEvent | None = None) -> bool:
        return False

    @admin.display(description="data")
    def pretty_data(self, obj: OutboxEvent) -> SafeString:
        """Return the event's data as indented JSON."""
        return format_html("<pre>{}</pre>", json.dumps(obj.data, indent=2, sort_keys=True))
