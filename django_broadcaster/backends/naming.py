"""Destination names taken from the event: a topic, stream, routing key or URL per event type.

A Kafka ``topic``, a Redis ``stream_name``, a RabbitMQ ``routing_key`` or a webhook ``url``
may be a fixed name, a template over the event's
attributes (``"events.{type}"``, ``"{source_host}.{type}"``), or a callable that takes the
:class:`~django_broadcaster.events.CloudEvent` and returns the name. The template fields are
:data:`FIELDS` and ``ext_`` and an extension's name (``{ext_tenant}``); each value is sanitised
to the broker's legal names (percent-encoded in a URL), so no event can make an illegal or
unbounded one. A template is
checked when the backend is built (``manage.py check``): an unknown field, a format spec or an
illegal literal is refused. A literal brace is written twice (``{{``), as in ``str.format``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, urlsplit

from ..events import CloudEvent

#: The attributes a template may name, besides extensions (``{ext_partitionkey}``, ...).
FIELDS: Final = frozenset({"type", "source", "source_host", "subject"})
_EXTENSION: Final = re.compile(r"ext_([a-z0-9]{1,20})")


@dataclass(frozen=True)
class Legal:
    """What a broker allows in a destination name: its characters and its length."""

    broker: str
    illegal: re.Pattern[str]  #: one character the broker refuses
    max_length: int
    described: str  #: the legal characters, for messages
    in_bytes: bool = False  #: ``max_length`` counts UTF-8 bytes (AMQP short strings)
    #: What each field's value becomes before it joins the name (URLs: percent-encoding).
    escape: Callable[[str], str] | None = None

    def sanitised(self, name: str) -> str:
        """Return ``name`` with each illegal character made ``_``, cut to ``max_length``."""
        name = self.illegal.sub("_", name)
        if self.in_bytes:  # a character cut in two is dropped whole
            name = name.encode()[: self.max_length].decode(errors="ignore")
        else:
            name = name[: self.max_length]
        return "_" * len(name) if name in (".", "..") else name  # Kafka refuses these two


KAFKA: Final = Legal("Kafka", re.compile(r"[^A-Za-z0-9._-]"), 249, "a-z A-Z 0-9 . _ -")
#: Redis takes any key; no control characters, and bounded, keep keys readable in redis-cli.
REDIS: Final = Legal("Redis", re.compile(r"[\x00-\x1f\x7f]"), 512, "no control characters")
#: An AMQP routing key is a short string: any UTF-8 up to 255 bytes; no control characters.
AMQP: Final = Legal(
    "RabbitMQ", re.compile(r"[\x00-\x1f\x7f]"), 255, "with no control characters", in_bytes=True
)
#: A URL: its literal parts in the characters RFC 3986 allows, each field percent-encoded, so a
#: value can add neither a path segment nor a query parameter.
URL: Final = Legal(
    "a URL",
    re.compile(r"[^A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]"),
    2000,  # what every client and server takes
    "RFC 3986's characters",
    escape=lambda value: quote(value, safe=""),
)
#: What a callable may return for Kafka: the topic, or the topic and the message key.
Named = str | tuple[str, str | bytes | None]


class DestinationName:
    """Resolve one backend's destination name for each event.

    Build it from the option's value; it raises ``ValueError`` saying what is wrong. ``fixed``
    is the name when it does not depend on the event (``None`` otherwise).
    """

    def __init__(self, value: object, legal: Legal) -> None:
        self.legal = legal
        self._function: Callable[[CloudEvent], Any] | None = None
        self._fields: list[tuple[str, str | None]] = []
        #: The literal text before the first field (all of a fixed name; ``""`` for a callable).
        self.prefix = ""
        if callable(value):
            self._function, self.fixed = value, None
            return
        if not isinstance(value, str) or not value:
            raise ValueError("must be a non-empty string, a template or a callable")
        self._fields = _parsed(value, legal)
        self.prefix = self._fields[0][0] if self._fields else ""
        literal = "".join(text for text, _ in self._fields)  # braces unescaped
        self.fixed = literal if all(field is None for _, field in self._fields) else None
        if self.fixed is not None and legal.sanitised(literal) != literal:
            unit = "bytes" if legal.in_bytes else "of the characters"
            raise ValueError(f"must be 1-{legal.max_length} {unit} {legal.described}")

    def resolve(self, event: CloudEvent) -> tuple[str, Any]:
        """Return the name for ``event`` and the key a callable chose (``...``: the event's).

        Raises ``ValueError`` when it comes out empty, or a callable returns something else
        than a string (or, for Kafka, a ``(topic, key)`` pair).
        """
        if self.fixed is not None:
            return self.fixed, ...
        key: Any = ...
        if self._function is not None:
            name = self._function(event)
            if isinstance(name, tuple) and len(name) == 2 and self.legal is KAFKA:
                name, key = name
            if not isinstance(name, str):
                raise ValueError(f"the name callable returned {name!r}, not a string")
        else:
            escape = self.legal.escape or str
            name = "".join(
                literal + escape(_value(event, field)) for literal, field in self._fields
            )
        name = self.legal.sanitised(name)
        if not name:
            raise ValueError(f"the {self.legal.broker} name for this event is empty")
        return name, key


def _parsed(template: str, legal: Legal) -> list[tuple[str, str | None]]:
    """Return the template's (literal, field) parts; raise ``ValueError`` naming a fault."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"template {template!r} is malformed ({exc})") from exc
    found: list[tuple[str, str | None]] = []
    templated = any(field is not None for _, field, _, _ in parts)
    for literal, field, spec, conversion in parts:
        if legal.illegal.search(literal) and templated:  # a fixed name has its own message
            raise ValueError(
                f"template {template!r} holds a character {legal.broker} refuses in "
                f"{literal!r}; use {legal.described}"
            )
        if field is not None and (spec or conversion or not _known(field)):
            raise ValueError(
                f"template {template!r} names {{{field}}}; use {sorted(FIELDS)} or ext_ and an "
                "extension's name, with no format spec or conversion ('{{' for a brace)"
            )
        found.append((literal, field))
    return found


def _known(field: str) -> bool:
    return field in FIELDS or _EXTENSION.fullmatch(field) is not None


def _value(event: CloudEvent, field: str | None) -> str:
    if field is None:
        return ""
    if field == "type":
        return event.event_type
    if field == "source":
        return event.source
    if field == "source_host":
        return urlsplit(event.source).hostname or ""
    if field == "subject":
        return event.subject or ""
    value = event.extensions.get(field.removeprefix("ext_"))
    return "" if value is None else str(value)
