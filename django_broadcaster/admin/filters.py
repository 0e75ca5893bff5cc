"""The changelist's own filters: by destination, by what a destination has not accepted, and by
failure group (the failure pages link to it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib import admin
from django.db.models import Q
from django.http import HttpRequest

from ..outbox.deliveries import (
    Destination,
    awaiting,
    bound_for,
    configured_destinations,
)
from ..outbox.failures import in_group


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


class FailureFilter(admin.ListFilter):
    """Events with a failure of one group (``failure``: its fingerprint), as the failure pages
    list them; shown in the sidebar only while applied."""

    title = "failure group"
    parameter_name = "failure"

    def __init__(
        self, request: HttpRequest, params: dict[str, Any], model: Any, model_admin: Any
    ) -> None:
        super().__init__(request, params, model, model_admin)
        if self.parameter_name in params:
            value = params.pop(self.parameter_name)  # a list of values since Django 5.0
            self.used_parameters[self.parameter_name] = (
                value[-1] if isinstance(value, list) else value
            )

    def has_output(self) -> bool:
        return self.parameter_name in self.used_parameters

    def expected_parameters(self) -> list[str | None]:
        return [self.parameter_name]

    def choices(self, changelist: Any) -> Iterator[dict[str, Any]]:
        yield {
            "selected": False,
            "query_string": changelist.get_query_string(remove=self.expected_parameters()),
            "display": "All",
        }
        yield {
            "selected": True,
            "query_string": changelist.get_query_string(),
            "display": self._fingerprint(),
        }

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if not self.has_output():
            return queryset
        return queryset.filter(pk__in=self.ids(queryset, self._fingerprint()))

    def ids(self, queryset: Any, fingerprint: str) -> list[Any]:
        """Return the ids of the rows of ``queryset`` with a failure of the group."""
        return in_group(queryset, fingerprint)

    def _fingerprint(self) -> str:
        return str(self.used_parameters[self.parameter_name])
