"""Describe what the configured backends send as an AsyncAPI 3.0 document.

Each backend with a channel (Kafka, Redis, RabbitMQ, webhooks: :mod:`.channels`) gets a channel,
a server and a ``send`` operation; each channel lists the messages of the event types that may
reach it by ``ROUTES`` (:func:`reaching`), in the backend's content mode (:mod:`.messages`).
The event types known are the typed event classes of ``BROADCASTER["ASYNCAPI"]["EVENTS"]``
(their data's JSON Schema, :mod:`..schemas`) and the exact types ``ROUTES`` names (untyped);
a channel that other types may reach also lists an ``other`` message, whose data is any JSON.
A call's ``backends=`` may send any event anywhere: the document describes the routes.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

from django.utils.module_loading import import_string

from ..backends import create_backend
from ..conf import SETTING_NAME, BroadcasterSettings, get_settings
from ..dead_letters import dead_letter_aliases
from ..exceptions import BroadcasterImproperlyConfigured
from ..globs import matches
from ..routing import Route, configured_routes
from ..schemas import data_schema
from ..typed import event_type_of, source_of
from .channels import Channel, describe
from .messages import EventInfo, message

__all__ = ["document", "options_problems", "reaching"]

#: The keys of ``ASYNCAPI``, each with the type of its value.
KEYS: Final = {"TITLE": str, "VERSION": str, "DESCRIPTION": str, "EVENTS": list}
DEFAULTS: Final = {"TITLE": "Events", "VERSION": "1.0.0"}
COMPONENT_REFS: Final = "#/components/schemas/{model}"
_NOT_A_KEY: Final = re.compile(r"[^A-Za-z0-9._-]")
ANY_DATA: Final = {"description": "Any JSON value: the type has no typed event class."}
OTHER: Final = EventInfo("other", None, ANY_DATA, "/my-service")


def document(config: BroadcasterSettings | None = None) -> dict[str, Any]:
    """Return the AsyncAPI 3.0.0 document of the settings, as JSON-ready values.

    Raises ``BroadcasterImproperlyConfigured`` when ``ASYNCAPI``, ``ROUTES`` or a backend is
    wrong (``manage.py check`` reports the same).
    """
    config = config or get_settings()
    options = _options(config.asyncapi)
    routes = configured_routes(config)
    schemas: dict[str, Any] = {}
    events = _events(options.get("EVENTS", []), routes, schemas)
    found: dict[str, Any] = {
        "asyncapi": "3.0.0",
        "info": _info(options),
        "defaultContentType": "application/json",
        "servers": {},
        "channels": {},
        "operations": {},
        "components": {"schemas": schemas, "messages": {}},
    }
    # A dead-letter backend is not one of "every backend": it gets dead letters only.
    letters = dead_letter_aliases(config)
    ordinary = [a for a in config.backends if a not in letters]
    for alias, backend_config in config.backends.items():
        channel = describe(create_backend(backend_config))
        if channel is None:
            continue
        if alias in letters:
            chosen = _dead_letters(alias, events, routes, config, ordinary)
        else:
            chosen = [
                e
                for e in events
                if e.event_type and alias in reaching(e.event_type, routes, ordinary)
            ]
            if _others_reach(alias, routes, ordinary):
                chosen.append(OTHER)
        _add_channel(found, _key(alias), channel, chosen)
    return found


def reaching(event_type: str, routes: Sequence[Route], aliases: Collection[str]) -> set[str]:
    """Return the aliases an event of ``event_type`` may go to by ``routes``."""
    rules, unrouted = _rules_for(event_type, routes)
    found = {alias for route in rules for alias in route.backends}
    return (found | set(aliases)) if unrouted else found


def _rules_for(event_type: str, routes: Sequence[Route]) -> tuple[list[Route], bool]:
    """Return the rules that may take an event of ``event_type``, in order, and whether it may
    be taken by none (and so go to every backend).

    A rule with ``WHEN`` may or may not take the event, so the rules after it count too.
    """
    taking = []
    for route in routes:
        if route.types and not any(matches(p, event_type) for p in route.types):
            continue
        taking.append(route)
        if route.when is None:
            return taking, False
    return taking, True


def _dead_letters(
    alias: str,
    events: Sequence[EventInfo],
    routes: Sequence[Route],
    config: BroadcasterSettings,
    aliases: Collection[str],
) -> list[EventInfo]:
    """Return the dead letters that may reach the dead-letter backend ``alias``.

    An event's rule's ``DEAD_LETTER`` wins over those of the backends it reaches, as in
    :func:`..dead_letters.dead_letter_for`; any type may be dead-lettered into ``alias`` when a
    backend naming it takes types no rule names exactly, or a rule naming it matches by glob.
    """
    feeding = {a for a, backend in config.backends.items() if backend.dead_letter == alias}
    chosen = [
        replace(event, key=f"deadletter.{event.key}", dead_letter=True)
        for event in events
        if event.event_type and alias in _dead_letters_of(event.event_type, routes, config, aliases)
    ]
    globbed = any(
        r.dead_letter == alias and (not r.types or any("*" in p for p in r.types)) for r in routes
    )
    if globbed or any(_others_reach(a, routes, aliases) for a in feeding):
        chosen.append(replace(OTHER, key="deadletter.other", dead_letter=True))
    return chosen


def _dead_letters_of(
    event_type: str, routes: Sequence[Route], config: BroadcasterSettings, aliases: Collection[str]
) -> set[str]:
    """Return the dead-letter aliases an event of ``event_type`` may end in by ``routes``."""
    rules, unrouted = _rules_for(event_type, routes)
    found: set[str] = set()
    for route in rules:
        own = {route.dead_letter} if route.dead_letter else None
        found |= own or _backends_dead_letters(route.backends, config)
    return (found | _backends_dead_letters(aliases, config)) if unrouted else found


def _backends_dead_letters(aliases: Collection[str], config: BroadcasterSettings) -> set[str]:
    named = (config.backends[a].dead_letter for a in aliases if a in config.backends)
    return {alias for alias in named if alias}


def _others_reach(alias: str, routes: Sequence[Route], aliases: Collection[str]) -> bool:
    """Return whether a type no rule names exactly may reach ``alias``."""
    if any(alias in r.backends and (not r.types or any("*" in p for p in r.types)) for r in routes):
        return True
    catch_all = any(r.when is None and (not r.types or "*" in r.types) for r in routes)
    return not catch_all and alias in aliases


def _add_channel(
    found: dict[str, Any], key: str, channel: Channel, events: list[EventInfo]
) -> None:
    messages = found["components"]["messages"]
    refs = {}
    for event in events:
        name = f"{channel.kind}.{channel.mode}.{event.key}"
        messages[name] = message(channel.kind, channel.mode, event)
        refs[event.key] = {"$ref": f"#/components/messages/{name}"}
    if channel.server is not None:
        found["servers"][key] = channel.server
    found["channels"][key] = {
        "address": channel.address,
        "title": key,
        "description": channel.description,
        **({"servers": [{"$ref": f"#/servers/{key}"}]} if channel.server is not None else {}),
        "messages": refs,
        **({"parameters": channel.parameters} if channel.parameters else {}),
        **({"bindings": channel.bindings} if channel.bindings else {}),
    }
    found["operations"][f"send.{key}"] = {
        "action": "send",
        "channel": {"$ref": f"#/channels/{key}"},
        "messages": [{"$ref": f"#/channels/{key}/messages/{name}"} for name in refs],
        **({"bindings": channel.operation_bindings} if channel.operation_bindings else {}),
    }


def _events(
    classes: Sequence[Any], routes: Sequence[Route], schemas: dict[str, Any]
) -> list[EventInfo]:
    """Return what is known of each event type, and put the data's schemas in ``schemas``."""
    found: dict[str, EventInfo] = {}
    for value in classes:
        cls = import_string(value) if isinstance(value, str) else value
        event_type, key = event_type_of(cls), _key(event_type_of(cls))
        schema = dict(data_schema(cls, COMPONENT_REFS))
        schemas.update(schema.pop("$defs", {}))
        schemas[key] = schema
        example = (schema.get("examples") or [None])[0]
        source = source_of(cls) or "/my-service"
        ref = {"$ref": f"#/components/schemas/{key}"}
        found[event_type] = EventInfo(key, event_type, ref, source, example, typed=True)
    for route in routes:
        for pattern in route.types:
            if "*" not in pattern and pattern not in found:
                found[pattern] = EventInfo(_key(pattern), pattern, ANY_DATA, "/my-service")
    return list(found.values())


def _info(options: Mapping[str, Any]) -> dict[str, Any]:
    info = {"title": options.get("TITLE", DEFAULTS["TITLE"])}
    info["version"] = options.get("VERSION", DEFAULTS["VERSION"])
    if "DESCRIPTION" in options:
        info["description"] = options["DESCRIPTION"]
    return info


def _key(name: str) -> str:
    """Return ``name`` as a key AsyncAPI allows in its maps."""
    return _NOT_A_KEY.sub("_", name) or "_"


def _options(raw: object) -> Mapping[str, Any]:
    problems = options_problems(raw)
    if problems:
        raise BroadcasterImproperlyConfigured(problems[0])
    return raw if isinstance(raw, Mapping) else {}


def options_problems(raw: object) -> list[str]:
    """Return a message per problem of ``raw``, a ``ASYNCAPI`` value (``None``: not set)."""
    where = f'{SETTING_NAME}["ASYNCAPI"]'
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        return [f"{where} must be a dict, got {type(raw).__name__}."]
    problems = [
        f"{where} has an unknown key {k!r}; known: {sorted(KEYS)}." for k in raw if k not in KEYS
    ]
    for key, expected in KEYS.items():
        if key in raw and not isinstance(raw[key], expected):
            problems.append(f'{where}["{key}"] must be a {expected.__name__}.')
    if isinstance(raw.get("EVENTS"), list):
        problems += [f'{where}["EVENTS"]: {p}.' for p in map(_event_problem, raw["EVENTS"]) if p]
    return problems


def _event_problem(value: object) -> str | None:
    try:
        cls = import_string(value) if isinstance(value, str) else value
        if not isinstance(cls, type):
            return f"{value!r} is not a typed event class"
        event_type_of(cls)
        data_schema(cls)
    except (ImportError, TypeError, BroadcasterImproperlyConfigured) as exc:
        return f"{value!r}: {exc}"
    return None
