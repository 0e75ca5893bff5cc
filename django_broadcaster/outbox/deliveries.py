"""Where an event should go, and where it stands with each destination.

A destination is a configured backend alias or a registered handler's name (``handler:`` and a
dotted path). An event is *bound for* a backend when its ``backends`` is null (every backend) or
lists the alias, and for a handler when the handler takes its type. It has *reached* a destination
when its ``delivered`` lists it. The admin and ``outbox_status`` share these definitions.

``backends`` and ``delivered`` are JSON lists, and Django's ``__contains`` on a ``JSONField`` is
not available on SQLite, so :class:`JSONListHas` asks each database in its own terms.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, Expression, F, Q
from django.db.models.fields.json import DataContains
from django.db.models.sql.compiler import SQLCompiler

from ..conf import get_settings
from ..registry import EventRegistry, event_registry
from .models import OutboxEvent, Status

_Sql = tuple[str, Any]


@dataclass(frozen=True)
class Destination:
    """A backend alias or handler name, and the event types it takes (``None``: every type)."""

    name: str
    is_backend: bool
    event_types: frozenset[str] | None = None

    @property
    def kind(self) -> str:
        """Return ``"backend"`` or ``"handler"``."""
        return "backend" if self.is_backend else "handler"


@dataclass(frozen=True)
class DeliveryState:
    """Where one event stands with one destination.

    ``state`` is ``"delivered"``, ``"error"`` (``error`` says why; the event's status tells
    whether it will be retried), ``"waiting"`` (pending, not tried yet or deferred) or
    ``"not delivered"`` (the event is finished without it, e.g. a handler registered later).
    """

    destination: str
    state: str
    error: str = ""


class JSONListHas(Expression):
    """A condition: the JSON list in column ``field_name`` has the string ``item``.

    PostgreSQL and MySQL use JSON containment; SQLite looks through ``json_each()``, exactly
    (case-sensitive, unlike its ``LIKE``). A null column has nothing. Use it inside ``Q()``.
    """

    conditional = True
    output_field = BooleanField()

    def __init__(self, field_name: str, item: str) -> None:
        super().__init__()
        self.column: Any = F(field_name)
        self.item = item

    def get_source_expressions(self) -> list[Any]:
        return [self.column]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.column,) = exprs

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> _Sql:
        return compiler.compile(DataContains(self.column, [self.item]))

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> _Sql:
        column, params = compiler.compile(self.column)
        sql = f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = %s)"
        return sql, (*params, self.item)


def configured_destinations(registry: EventRegistry | None = None) -> list[Destination]:
    """Return the configured backends, then the handlers of ``registry`` (default: global)."""
    backends = [Destination(alias, is_backend=True) for alias in get_settings().backends]
    handlers = [
        Destination(name, is_backend=False, event_types=types)
        for name, types in (registry or event_registry).destinations().items()
    ]
    return [*backends, *handlers]


def bound_for(destination: Destination) -> Q:
    """Return the condition on outbox rows: the event should go to ``destination``."""
    if destination.is_backend:
        return Q(backends__isnull=True) | Q(JSONListHas("backends", destination.name))
    if destination.event_types is None:
        return Q()
    return Q(event_type__in=sorted(destination.event_types))


def reached(destination: Destination) -> Q:
    """Return the condition on outbox rows: ``destination`` accepted the event."""
    return Q(JSONListHas("delivered", destination.name))


def awaiting(destination: Destination) -> Q:
    """Return the condition: bound for ``destination`` and not delivered there yet."""
    return bound_for(destination) & ~reached(destination)


def wants(row: OutboxEvent, destination: Destination) -> bool:
    """Return whether ``row`` should go to ``destination`` (:func:`bound_for`, in Python)."""
    if destination.is_backend:
        return row.wants_backend(destination.name)
    return destination.event_types is None or row.event_type in destination.event_types


def parse_errors(last_error: str, names: Iterable[str]) -> dict[str, str]:
    """Split ``last_error`` ("dest: why; dest2: why") into each destination's reason.

    Only ``names`` are recognised as destinations, so a reason may itself contain "; ". Text
    that starts with no known name is returned under the key ``""``.
    """
    known = sorted(set(names), key=len, reverse=True)
    if not last_error:
        return {}
    if not known:
        return {"": last_error}
    pattern = re.compile("(?:^|; )(" + "|".join(re.escape(name) for name in known) + "): ")
    parts = pattern.split(last_error)
    errors = {"": parts[0]} if parts[0] else {}
    errors.update(zip(parts[1::2], parts[2::2], strict=True))
    return errors


def delivery_states(row: OutboxEvent, destinations: Iterable[Destination]) -> list[DeliveryState]:
    """Return the state of ``row`` with each destination it is bound for or has reached."""
    delivered = list(row.delivered or [])
    names = [d.name for d in destinations if wants(row, d)]
    names += [name for name in [*delivered, *(row.backends or [])] if name not in names]
    errors = parse_errors(row.last_error, names)
    return [_state(row, name, delivered, errors) for name in names]


def _state(
    row: OutboxEvent, name: str, delivered: list[str], errors: Mapping[str, str]
) -> DeliveryState:
    if name in delivered:
        return DeliveryState(name, "delivered")
    if name in errors:
        return DeliveryState(name, "error", errors[name])
    if row.status == Status.PENDING:
        return DeliveryState(name, "waiting")
    return DeliveryState(name, "not delivered")
