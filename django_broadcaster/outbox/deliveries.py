"""Where an event should go, and where it stands with each destination.

A destination is a configured backend alias or a registered handler's name (``handler:`` and a
dotted path). An event is *bound for* a backend when its ``backends`` is null (every backend) or
names the alias (the publisher then listed it in ``delivery`` as ``pending``), and for a handler
when the handler takes its type. It has *reached* a destination when its ``delivery`` entry there
says ``delivered``. A failure's *kind* is what its error begins with: the exception's class name
(``KeyError``, ``EventRejected``) or ``unavailable``. The admin and ``outbox_status`` share these
definitions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.lookups import Exact, In, StartsWith

from ..conf import get_settings
from ..events import parse_timestamp
from ..registry import EventRegistry, event_registry
from .models import DestinationEntry, DestinationState, OutboxEvent, Status


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
    """Where one event stands with one destination: an entry of its ``delivery``, for people.

    ``state`` is a :class:`~.models.DestinationState`, or ``"not delivered"`` for a destination
    the event is bound for but finished without (a handler registered later, say).
    """

    destination: str
    state: str
    attempts: int = 0
    error: str = ""
    at: datetime | None = None


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
        return Q(backends__isnull=True) | Q(delivery__has_key=destination.name)
    if destination.event_types is None:
        return Q()
    return Q(event_type__in=sorted(destination.event_types))


def reached(destination: Destination) -> Q:
    """Return the condition on outbox rows: ``destination`` accepted the event."""
    state = KeyTextTransform("state", KeyTransform(destination.name, "delivery"))
    return Q(Exact(state, str(DestinationState.DELIVERED)))


def awaiting(destination: Destination) -> Q:
    """Return the condition: bound for ``destination`` and not delivered there yet."""
    tried = Q(delivery__has_key=destination.name)
    return bound_for(destination) & (~tried | ~reached(destination))


def error_kind(error: str) -> str:
    """Return the kind of a destination's ``error``: its text up to the first colon, stripped."""
    return error.split(":", 1)[0].strip()


def failed_with(destination: str, kind: str) -> Q:
    """Return the condition: the event ended ``failed`` with an error of ``kind`` at
    ``destination`` (a name, so that destinations no longer configured can be chosen)."""
    entry = KeyTransform(destination, "delivery")
    error = KeyTextTransform("error", entry)
    refused = In(KeyTextTransform("state", entry), list(NOT_REACHED))
    of_kind = Q(Exact(error, kind)) | Q(StartsWith(error, f"{kind}:"))
    return Q(status=Status.FAILED) & Q(refused) & of_kind


#: The states of a destination that was tried and did not take the event.
NOT_REACHED = (str(DestinationState.REJECTED), str(DestinationState.UNAVAILABLE))


def wants(row: OutboxEvent, destination: Destination) -> bool:
    """Return whether ``row`` should go to ``destination`` (:func:`bound_for`, in Python)."""
    if destination.is_backend:
        return row.wants_backend(destination.name)
    return destination.event_types is None or row.event_type in destination.event_types


def delivery_states(row: OutboxEvent, destinations: Iterable[Destination]) -> list[DeliveryState]:
    """Return the state of ``row`` with each destination it is bound for or has an entry for."""
    delivery = row.delivery or {}
    names = [d.name for d in destinations if wants(row, d)]
    names += [name for name in delivery if name not in names]
    return [_state(row, name, delivery.get(name)) for name in names]


def _state(row: OutboxEvent, name: str, entry: DestinationEntry | None) -> DeliveryState:
    state = (entry or {}).get("state", DestinationState.PENDING)
    if state == DestinationState.PENDING and row.status != Status.PENDING:
        state = "not delivered"  # finished without it (expired, or a handler registered later)
    if entry is None:
        return DeliveryState(name, state)
    at = entry.get("at")
    return DeliveryState(
        name,
        state,
        attempts=entry.get("attempts", 0),
        error=entry.get("error", ""),
        at=None if at is None else parse_timestamp(at),
    )
