"""Where an event should go, and where it stands with each destination.

A destination is a configured backend alias or a registered handler's name (``handler:`` and a
dotted path). An event is *bound for* a backend when its ``backends`` is null (every backend) or
names the alias (the publisher then listed it in ``delivery`` as ``pending``), and for a handler
when the handler takes its type and, if it has a predicate, the publisher listed it there too
(:mod:`..predicates`); a command goes to no backend and no catch-all handler. It has *reached* a
destination when its ``delivery`` entry there says ``delivered``. The admin and
``outbox_status`` share these definitions; failures are grouped by :mod:`.failures`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.lookups import Exact
from django.utils import timezone

from ..commands import COMMANDS, is_command_type
from ..conf import get_settings
from ..dead_letters import dead_letter_aliases
from ..events import CloudEvent, format_timestamp, parse_timestamp
from ..exceptions import InvalidEvent
from ..predicates import choose
from ..registry import EventRegistry, event_registry
from .models import DestinationEntry, DestinationState, OutboxEvent, Status


@dataclass(frozen=True)
class Destination:
    """A backend alias or handler name, and the event types it takes (``None``: every type).

    ``listed`` says that the handler has a predicate: it is bound for the events that list it;
    ``letters_only`` that the backend is a dead-letter one, so not among "every backend".
    """

    name: str
    is_backend: bool
    event_types: frozenset[str] | None = None
    listed: bool = False
    letters_only: bool = False

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
    dead_letter: str = ""  #: the alias its failure went on to, if it did


def configured_destinations(registry: EventRegistry | None = None) -> list[Destination]:
    """Return the configured backends, then the handlers of ``registry`` (default: global)."""
    config = get_settings()
    letters_only = dead_letter_aliases(config)
    backends = [Destination(a, True, letters_only=a in letters_only) for a in config.backends]
    registry = registry or event_registry
    handlers = [
        Destination(name, is_backend=False, event_types=types, listed=name in registry.predicates)
        for name, types in registry.destinations().items()
    ]
    return [*backends, *handlers]


def bound_for(destination: Destination) -> Q:
    """Return the condition on outbox rows: the event should go to ``destination``."""
    if destination.is_backend:
        named = Q(delivery__has_key=destination.name)
        return named if destination.letters_only else Q(backends__isnull=True) | named
    listed = Q(delivery__has_key=destination.name) if destination.listed else Q()
    if destination.event_types is None:  # every event but commands
        return (~Q(event_type__in=sorted(COMMANDS)) if COMMANDS else Q()) & listed
    return Q(event_type__in=sorted(destination.event_types)) & listed


def reached(destination: Destination) -> Q:
    """Return the condition on outbox rows: ``destination`` accepted the event."""
    state = KeyTextTransform("state", KeyTransform(destination.name, "delivery"))
    return Q(Exact(state, str(DestinationState.DELIVERED)))


def awaiting(destination: Destination) -> Q:
    """Return the condition: bound for ``destination`` and not delivered there yet."""
    tried = Q(delivery__has_key=destination.name)
    return bound_for(destination) & (~tried | ~reached(destination))


#: The states of a destination that was tried and did not take the event.
NOT_REACHED = (str(DestinationState.REJECTED), str(DestinationState.UNAVAILABLE))


def wants(row: OutboxEvent, destination: Destination) -> bool:
    """Return whether ``row`` should go to ``destination`` (:func:`bound_for`, in Python)."""
    if destination.is_backend and destination.letters_only:
        return destination.name in (row.backends or ())
    if destination.is_backend:
        return row.wants_backend(destination.name)
    if destination.listed and destination.name not in (row.delivery or {}):
        return False
    if destination.event_types is None:
        return not is_command_type(row.event_type)
    return row.event_type in destination.event_types


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
        dead_letter=entry.get("dead_letter", ""),
    )


def route_to_handlers(row: OutboxEvent, event: CloudEvent, registry: EventRegistry) -> OutboxEvent:
    """Make the unsaved ``row`` of ``event`` go where commands and predicates send it; return it.

    A command goes to its one handler alone: no backend (``InvalidEvent`` if the publisher chose
    some). The handlers with a predicate that chooses the event are listed in its ``delivery``
    (:func:`handler_entries`).
    """
    if is_command_type(event.event_type):
        if row.backends:
            raise InvalidEvent(
                f"{event.event_type!r} is a command: it goes to its one handler, never to a "
                "backend; publish it without backends=."
            )
        row.backends, row.delivery = [], {}
    row.delivery = {**row.delivery, **handler_entries(event, registry)}
    return row


def handler_entries(event: CloudEvent, registry: EventRegistry) -> dict[str, DestinationEntry]:
    """Return the ``delivery`` entries listing the handlers with a predicate that ``event`` is for.

    Each predicate of the event's handlers is asked once (:func:`~..predicates.choose`): a
    handler it chose is listed ``pending``; one whose predicate raised is listed ``rejected``,
    with the error, as tried once; one it did not choose is not listed, so is no destination.
    """
    chosen = choose(registry.predicates, registry.handlers_for(event.event_type), event)
    entries: dict[str, DestinationEntry] = {}
    for name, failure in chosen.items():
        if failure is None:
            entries[name] = {"state": DestinationState.PENDING, "attempts": 0}
            continue
        error, at = f"{type(failure).__name__}: {failure}", format_timestamp(timezone.now())
        entries[name] = {
            "state": DestinationState.REJECTED,
            "attempts": 1,
            "error": error,
            "at": at,
        }
    return entries
