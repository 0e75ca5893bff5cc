"""Handler predicates: which events a handler registered with ``when=`` is a destination of.

A predicate is asked once per event, when the event is published (:func:`choose`), because that
is when an event's destinations are fixed: the publisher lists the backends it chose in the row's
``delivery``, and lists the handlers whose predicate said yes there too. A handler whose predicate
said no is not a destination of that event at all: never listed, never called, never pending.
One whose predicate raised is listed as failed; the worker reports that failure again on each
attempt (:func:`refusals`) rather than call the handler, so the event ends ``failed`` unless it is
published again. The worker reads the row's listing and never asks a predicate itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Protocol

from .events import CloudEvent
from .exceptions import PredicateFailed
from .typed import from_cloud_event

logger = logging.getLogger(__name__)

#: A predicate as the registry keeps it: given the CloudEvent, true when its handler should get it.
Predicate = Callable[[CloudEvent], object]
#: A predicate as registered: given the CloudEvent, or the instance of the typed event class.
When = Callable[[Any], object]


class Listing(Protocol):
    """What a claimed outbox row says of its handlers: the names delivered, and each entry."""

    @property
    def delivered(self) -> Collection[str]:
        """Return the destinations that have the event."""

    @property
    def delivery(self) -> Mapping[str, Mapping[str, Any]]:
        """Return each listed destination's entry (``state``, ``error``...)."""


def typed_predicate(when: When, typed: type) -> Predicate:
    """Return ``when`` made to take the CloudEvent: it gets the instance of the class ``typed``."""

    def on_instance(event: CloudEvent) -> object:
        return when(from_cloud_event(typed, event))

    return on_instance


def choose(
    predicates: Mapping[str, Predicate], names: Iterable[str], event: CloudEvent
) -> dict[str, PredicateFailed | None]:
    """Ask the predicate of each handler of ``names`` about ``event``; return those it concerns.

    A handler whose predicate is true maps to ``None``; one whose predicate raised maps to the
    :class:`PredicateFailed` it is listed with (the error is logged with its traceback); one whose
    predicate is false, or that has none, is left out. Never raises for a predicate's error.
    """
    chosen: dict[str, PredicateFailed | None] = {}
    for name in names:
        if (predicate := predicates.get(name)) is None:
            continue
        try:
            if predicate(event):
                chosen[name] = None
        except Exception as exc:  # the predicate's bug: its handler's failure, not the caller's
            logger.exception(
                "Predicate of %s failed on a %s event from %s: the handler fails for that event.",
                name,
                event.event_type,
                event.source,
            )
            failure = PredicateFailed(f"{type(exc).__name__}: {exc}", destination=name)
            chosen[name] = failure
    return chosen


def refusals(
    predicates: Mapping[str, Predicate], listing: Listing
) -> dict[str, PredicateFailed | None]:
    """Return the handlers with a predicate that the worker must not call for a claimed row.

    One the row does not list maps to ``None`` (not a destination: skip it); one listed as failed
    by its predicate maps to the :class:`PredicateFailed` to report again.
    """
    refused: dict[str, PredicateFailed | None] = {}
    for name in predicates:
        entry = listing.delivery.get(name)
        if entry is None:
            refused[name] = None
        elif (error := str(entry.get("error", ""))).startswith(PREDICATE_FAILED):
            why = error.removeprefix(PREDICATE_FAILED)
            refused[name] = PredicateFailed(why, destination=name)
    return refused


#: How the error of a handler's entry starts when its predicate raised (the error's *kind*).
PREDICATE_FAILED = f"{PredicateFailed.__name__}: "
