"""Routes: which backends get an event, and its retry, expiry and priority defaults.

``BROADCASTER["ROUTES"]`` is an ordered list of rules. Each is a dict: ``TYPES`` (an exact type,
a ``*`` glob, or a list of them) and/or ``WHEN`` (a predicate on the event, or its dotted path)
say what it matches; ``BACKENDS`` lists the aliases that get those events; ``MAX_RETRIES``,
``PRIORITY``, ``EXPIRES_AFTER`` and the backoff (``RETRY_BASE_DELAY``, ``RETRY_MAX_DELAY``) are
their defaults, ``VALIDATE_DATA`` turns :mod:`.validation` on or off for them, and
``DEAD_LETTER`` names where they go when they fail (:mod:`.dead_letters`). The first rule that
matches an event decides (as Celery's ``task_routes`` does); an event no rule matches goes to
every backend. The publisher asks :func:`route_for` once, so the row records exactly the
destinations it needs, and an argument of the call (``backends=``, ...) wins over the route's.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Final

from django.utils import timezone
from django.utils.module_loading import import_string

from .conf import MAX_RETRIES_LIMIT, PRIORITIES, SETTING_NAME, BroadcasterSettings, get_settings
from .events import CloudEvent, format_timestamp
from .exceptions import BroadcasterImproperlyConfigured
from .globs import covers, matches, overlap

#: The keys a rule may have; ``BACKENDS`` and one of ``TYPES`` or ``WHEN`` are required.
KEYS: Final = frozenset(
    {"TYPES", "WHEN", "BACKENDS", "MAX_RETRIES", "PRIORITY", "EXPIRES_AFTER"}
    | {"RETRY_BASE_DELAY", "RETRY_MAX_DELAY", "VALIDATE_DATA", "DEAD_LETTER"}
)
Predicate = Callable[[CloudEvent], bool]


@dataclass(frozen=True)
class Route:
    """One rule of ``ROUTES``: what it matches, where matching events go, their defaults.

    ``types`` are exact types or ``*`` globs (:mod:`.globs`), empty for any type; ``when`` is a
    predicate on the whole event. Both must hold when both are given.
    """

    number: int  #: its place in ``ROUTES``, from 1
    types: tuple[str, ...]
    when: Predicate | None
    when_name: str
    backends: tuple[str, ...]
    max_retries: int | None = None
    priority: int | None = None
    expires_after: timedelta | None = None
    retry_base_delay: timedelta | None = None
    retry_max_delay: timedelta | None = None
    dead_letter: str | None = None  #: the backend alias its failed events go to
    validate_data: bool | None = None

    def matches(self, event: CloudEvent) -> bool:
        """Return whether this rule takes ``event``."""
        if self.types and not any(matches(pattern, event.event_type) for pattern in self.types):
            return False
        return self.when is None or bool(self.when(event))

    def validates(self, default: bool) -> bool:
        """Return whether its events' data is validated: its ``VALIDATE_DATA``, else ``default``."""
        return default if self.validate_data is None else self.validate_data

    @property
    def defaults(self) -> str:
        """Return the rule's defaults for people (``"max_retries 9, priority 5"``), or ``""``."""
        named = [
            ("max_retries", self.max_retries),
            ("priority", self.priority),
            ("expires after", self.expires_after),
            ("backoff from", self.retry_base_delay),
            ("backoff up to", self.retry_max_delay),
            ("dead letters to", self.dead_letter),
        ]
        return ", ".join(f"{name} {value}" for name, value in named if value is not None)

    @property
    def condition(self) -> str:
        """Return what the rule matches, for people: its types and its predicate's path."""
        parts = [", ".join(self.types)] if self.types else []
        return " and ".join([*parts, *([f"when {self.when_name}"] if self.when else [])])


def parse_routes(raw: object) -> tuple[tuple[Route, ...], list[str]]:
    """Return the rules ``raw`` (a ``ROUTES`` value) describes, and a message per problem of
    shape or value; a rule with a problem is left out of the rules returned."""
    if not isinstance(raw, list | tuple):
        return (), [f'{SETTING_NAME}["ROUTES"] must be a list of rules, got {type(raw).__name__}.']
    routes, errors = [], []
    for number, rule in enumerate(raw, start=1):
        problems = _rule_problems(rule)
        if problems:
            errors += [f'{SETTING_NAME}["ROUTES"] rule {number}: {p}.' for p in problems]
        else:
            routes.append(_route(number, rule))
    return tuple(routes), errors


def _rule_problems(rule: object) -> list[str]:
    if not isinstance(rule, Mapping):
        return [f"must be a dict with BACKENDS and TYPES or WHEN, got {type(rule).__name__}"]
    problems = [f"unknown key {k!r}; known: {sorted(KEYS)}" for k in rule if k not in KEYS]
    if "TYPES" not in rule and "WHEN" not in rule:
        problems.append("needs TYPES (a type, a glob such as 'order.*', or a list) or WHEN")
    problems += _types_problems(rule.get("TYPES", []))
    if "WHEN" in rule and isinstance(problem := _predicate(rule["WHEN"]), str):
        problems.append(problem)
    backends = rule.get("BACKENDS")
    if not isinstance(backends, list | tuple) or not all(isinstance(a, str) for a in backends):
        problems.append("needs BACKENDS, a list of backend aliases")
    return problems + _policy_problems(rule)


def unknown_aliases(routes: Sequence[Route], aliases: Collection[str]) -> list[str]:
    """Return a message for each rule that names a backend alias not in ``aliases``."""
    return [
        f'{SETTING_NAME}["ROUTES"] rule {route.number} ({route.condition}) names the backend '
        f"{alias!r}, which is not configured; configured: {sorted(aliases)}."
        for route in routes
        for alias in route.backends
        if alias not in aliases
    ]


def _types_problems(types: object) -> list[str]:
    listed = [types] if isinstance(types, str) else types
    if not isinstance(listed, list | tuple) or not all(isinstance(t, str) and t for t in listed):
        return ["TYPES must be a non-empty string or a list of them"]
    if bad := [t for t in listed if any(c in t for c in "?[]")]:
        return [f"TYPES {bad[0]!r}: only '*' is a wildcard"]
    return []


def _policy_problems(rule: Mapping[str, Any]) -> list[str]:
    problems = []
    retries = rule.get("MAX_RETRIES", 0)
    if isinstance(retries, bool) or not isinstance(retries, int):
        problems.append("MAX_RETRIES must be an int")
    elif not 0 <= retries <= MAX_RETRIES_LIMIT:
        problems.append(f"MAX_RETRIES must be from 0 to {MAX_RETRIES_LIMIT}")
    priority = rule.get("PRIORITY", 0)
    if isinstance(priority, bool) or not isinstance(priority, int) or priority not in PRIORITIES:
        problems.append("PRIORITY must be an int from -100 to 100")
    if not isinstance(rule.get("VALIDATE_DATA", False), bool):
        problems.append("VALIDATE_DATA must be True or False")
    for key in ("EXPIRES_AFTER", "RETRY_BASE_DELAY", "RETRY_MAX_DELAY"):
        value = rule.get(key, timedelta(1))
        if not isinstance(value, timedelta) or value <= timedelta(0):
            problems.append(f"{key} must be a positive timedelta")
    if not isinstance(rule.get("DEAD_LETTER", "x"), str) or rule.get("DEAD_LETTER") == "":
        problems.append("DEAD_LETTER must be a backend alias (a non-empty string)")
    return problems


def _predicate(when: object) -> Predicate | str:
    """Return the predicate ``when`` names (a callable or its dotted path), or the problem."""
    if isinstance(when, str):
        try:
            when = import_string(when)
        except ImportError as exc:
            return f"WHEN cannot be imported ({exc})"
    if not callable(when):
        return "WHEN must be a callable taking the event, or its dotted path"
    return when


def _route(number: int, rule: Mapping[str, Any]) -> Route:
    types = rule.get("TYPES", ())
    when = rule.get("WHEN")
    predicate = None if when is None else _predicate(when)
    assert not isinstance(predicate, str)  # checked by _rule_problems
    return Route(
        number=number,
        types=(types,) if isinstance(types, str) else tuple(types),
        when=predicate,
        when_name=when if isinstance(when, str) else _qualified_name(when),
        backends=tuple(rule["BACKENDS"]),
        max_retries=rule.get("MAX_RETRIES"),
        priority=rule.get("PRIORITY"),
        expires_after=rule.get("EXPIRES_AFTER"),
        retry_base_delay=rule.get("RETRY_BASE_DELAY"),
        retry_max_delay=rule.get("RETRY_MAX_DELAY"),
        dead_letter=rule.get("DEAD_LETTER"),
        validate_data=rule.get("VALIDATE_DATA"),
    )


def _qualified_name(function: object) -> str:
    if function is None:
        return ""
    return f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', function)}"


def route_for(event: CloudEvent, config: BroadcasterSettings | None = None) -> Route | None:
    """Return the first rule of ``ROUTES`` that takes ``event``, or ``None`` when none does.

    Raises ``BroadcasterImproperlyConfigured`` when ``ROUTES`` is malformed.
    """
    for route in configured_routes(config):
        if route.matches(event):
            return route
    return None


_parsed: list[tuple[BroadcasterSettings, tuple[Route, ...]]] = []


def configured_routes(config: BroadcasterSettings | None = None) -> tuple[Route, ...]:
    """Return the rules of ``ROUTES`` in order; raise ``BroadcasterImproperlyConfigured``."""
    config = config or get_settings()
    if _parsed and _parsed[0][0] is config:  # parsed once per settings object: publish is hot
        return _parsed[0][1]
    routes, errors = parse_routes(config.routes)
    errors += unknown_aliases(routes, config.backends)
    if errors:
        raise BroadcasterImproperlyConfigured(errors[0])
    _parsed[:] = [(config, routes)]
    return routes


def apply_route(
    route: Route,
    event: CloudEvent,
    backends: Sequence[str] | None,
    max_retries: int | None,
    priority: int | None,
) -> tuple[CloudEvent, Sequence[str] | None, int | None, int | None]:
    """Return ``event``, ``backends``, ``max_retries`` and ``priority`` with what the call left
    out (``None``) taken from ``route``, the event's (:func:`route_for`).

    The route's ``EXPIRES_AFTER``, counted from the event's time (else now), becomes the
    event's ``expirytime`` unless it has one.
    """
    if route.expires_after is not None and "expirytime" not in event.extensions:
        expiry = (event.time or timezone.now()) + route.expires_after
        extensions = {**event.extensions, "expirytime": format_timestamp(expiry)}
        event = replace(event, extensions=extensions)
    return (
        event,
        route.backends if backends is None else backends,
        route.max_retries if max_retries is None else max_retries,
        route.priority if priority is None else priority,
    )


def retry_backoff(event: CloudEvent, config: BroadcasterSettings) -> tuple[timedelta, timedelta]:
    """Return the first and the longest retry delay for ``event``: its route's
    ``RETRY_BASE_DELAY`` and ``RETRY_MAX_DELAY``, else the settings' of those names.

    Read when a rejection is recorded, so the current routes decide. Raises
    ``BroadcasterImproperlyConfigured`` when ``ROUTES`` is malformed.
    """
    route = route_for(event, config) if config.routes else None
    base = route.retry_base_delay if route else None
    cap = route.retry_max_delay if route else None
    return base or config.retry_base_delay, cap or config.retry_max_delay


def shadowed_rules(routes: Sequence[Route]) -> list[str]:
    """Return a message for each rule that can never match: earlier rules take all its types.

    A rule with ``WHEN`` takes only some events of its types, so it shadows none.
    """
    messages = []
    for index, route in enumerate(routes):
        earlier = [p for r in routes[:index] if r.when is None for p in r.types]
        mine = route.types or ("*",)
        if earlier and all(any(covers(p, q) for p in earlier) for q in mine):
            messages.append(
                f'{SETTING_NAME}["ROUTES"] rule {route.number} ({route.condition}) can never '
                "match: earlier rules take every type it names (the first matching rule wins)."
            )
    return messages


def overlapping_rules(routes: Sequence[Route]) -> list[str]:
    """Return a message per pair of rules some type matches both of, neither covering the
    other's pattern (that is :func:`shadowed_rules`' case, or a narrower rule put first)."""
    messages = []
    for index, route in enumerate(routes):
        for earlier in routes[:index]:
            pairs = [
                (p, q)
                for p in earlier.types
                for q in route.types
                if overlap(p, q) and not covers(p, q) and not covers(q, p)
            ]
            if pairs:
                p, q = pairs[0]
                messages.append(
                    f'{SETTING_NAME}["ROUTES"] rules {earlier.number} ({p!r}) and '
                    f"{route.number} ({q!r}) overlap: an event of a type both match goes by "
                    f"rule {earlier.number} only."
                )
    return messages
