"""Dead letters: where an event goes when it fails at a destination, and what it looks like there.

``DEAD_LETTER`` names a backend alias: on a backend of ``BACKENDS`` (for that backend's
failures) or on a rule of ``ROUTES`` (for its events' failures at any destination, handlers
included), the route's winning. An event *fails* at a destination when it is refused there with
no retry left. It is then sent to the dead-letter backend as itself (same ``id``, ``source``,
``type``, ``data`` and extensions) with the failure in the extensions of :data:`EXTENSIONS`.

A backend named by some ``DEAD_LETTER`` is a dead-letter destination: events published to
every backend (no ``backends=``, no route) skip it, and it has no ``DEAD_LETTER`` of its own, so
a dead letter is never dead-lettered in turn. The system checks (:func:`check_messages`) hold
these rules; the rows' side is :mod:`.outbox.dead_letters`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

from .conf import SETTING_NAME, BroadcasterSettings
from .events import CloudEvent
from .routing import Route, route_for

#: The extension attributes a dead letter carries, by meaning.
REASON: Final = "deadletterreason"  #: ``retriesexhausted``, or ``rejected`` (no retry allowed)
DESTINATION: Final = "deadletterdest"  #: the alias or handler name where it failed
ATTEMPTS: Final = "deadletterattempts"  #: how many deliveries were tried there (an integer)
ERROR: Final = "deadlettererror"  #: the last error there, as one line
EXTENSIONS: Final = (REASON, DESTINATION, ATTEMPTS, ERROR)
#: The longest error text a dead letter carries; the row keeps the whole of it.
MAX_ERROR_LENGTH: Final = 1024


def dead_letter_for(event: CloudEvent, destination: str, config: BroadcasterSettings) -> str | None:
    """Return the alias ``event``'s failure at ``destination`` goes to, or ``None``.

    The event's route's ``DEAD_LETTER`` wins over the backend's; a handler has only the route's.
    A dead-letter destination's own failures go nowhere.
    """
    if destination in dead_letter_aliases(config):
        return None
    route = route_for(event, config) if config.routes else None
    if route is not None and route.dead_letter:
        return route.dead_letter
    backend = config.backends.get(destination)
    return backend.dead_letter if backend is not None else None


def dead_letter_aliases(config: BroadcasterSettings) -> frozenset[str]:
    """Return the aliases some ``DEAD_LETTER`` names: the dead-letter destinations."""
    named: list[object] = [backend.dead_letter for backend in config.backends.values()]
    named += [_route_dead_letter(rule) for rule in config.routes]
    return frozenset(alias for alias in named if isinstance(alias, str) and alias)


def dead_letter_event(
    event: CloudEvent, destination: str, attempts: int, error: str, max_retries: int
) -> CloudEvent:
    """Return the dead letter of ``event``, which failed at ``destination``.

    It is ``event`` with the :data:`EXTENSIONS` added: why (``retriesexhausted``, or
    ``rejected`` when ``max_retries`` is 0), where, after how many ``attempts``, and the last
    ``error`` (made one printable line, cut to :data:`MAX_ERROR_LENGTH`).
    """
    failure = {
        REASON: "retriesexhausted" if max_retries else "rejected",
        DESTINATION: destination,
        ATTEMPTS: attempts,
        ERROR: _one_line(error) or "unknown",
    }
    return replace(event, extensions={**event.extensions, **failure})


def _one_line(text: str) -> str:
    printable = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(printable.split())[:MAX_ERROR_LENGTH]


def _route_dead_letter(rule: object) -> Any:
    return rule.get("DEAD_LETTER") if isinstance(rule, Mapping) else None


def check_messages(backends: Mapping[str, Any], routes: Sequence[Route]) -> list[tuple[str, str]]:
    """Return ``(message, code)`` per problem of the ``DEAD_LETTER`` settings.

    ``backends`` is ``BACKENDS`` as written; ``routes`` the well-formed rules of ``ROUTES``.
    Codes: ``E060`` a backend's ``DEAD_LETTER`` is not a string; ``E061`` it names no configured
    backend (a handler cannot be one); ``E062`` a backend is its own; ``E063`` a dead-letter
    destination has a ``DEAD_LETTER`` (a chain or a loop); ``W060`` a route sends ordinary
    events to a dead-letter destination.
    """
    found, named = _backend_dead_letters(backends)
    named += [(f'{SETTING_NAME}["ROUTES"] rule {r.number}', "", r.dead_letter) for r in routes]
    named = [(where, alias, target) for where, alias, target in named if target]
    targets = {target for _, _, target in named}
    for where, alias, target in named:
        if target not in backends:
            found.append((_unknown(where, target, backends), "E061"))
        elif target == alias:
            found.append((f"{where} names itself as its DEAD_LETTER: a loop.", "E062"))
        elif alias in targets:
            found.append((_chained(where, target), "E063"))
    for route in routes:
        found += [(_mixed(route, alias), "W060") for alias in route.backends if alias in targets]
    return found


Named = list[tuple[str, str, Any]]


def _backend_dead_letters(backends: Mapping[str, Any]) -> tuple[list[tuple[str, str]], Named]:
    """Return an ``E060`` per malformed backend ``DEAD_LETTER``, and the well-formed ones."""
    found, named = [], []
    for alias, config in backends.items():
        target = config.get("DEAD_LETTER") if isinstance(config, Mapping) else None
        where = f'{SETTING_NAME}["BACKENDS"][{alias!r}]'
        if target is not None and (not isinstance(target, str) or not target):
            found.append((f"{where}['DEAD_LETTER'] must be a backend alias (a string).", "E060"))
        elif target is not None:
            named.append((where, alias, target))
    return found, named


def _unknown(where: str, target: str, backends: Mapping[str, Any]) -> str:
    what = "a handler, which cannot be one" if target.startswith("handler:") else "not configured"
    return (
        f"{where} has DEAD_LETTER {target!r}, {what}: a dead-letter destination is a backend "
        f"alias; configured: {sorted(backends)}."
    )


def _chained(where: str, target: str) -> str:
    return (
        f"{where} is a dead-letter destination with a DEAD_LETTER of its own ({target!r}): "
        "a dead letter is never sent on; remove one of the two."
    )


def _mixed(route: Route, alias: str) -> str:
    return (
        f'{SETTING_NAME}["ROUTES"] rule {route.number} ({route.condition}) sends events to '
        f"{alias!r}, a dead-letter destination: they are mixed with its dead letters."
    )
