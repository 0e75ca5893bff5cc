"""The CloudEvents 1.0 rules for context attributes and extensions, and their timestamps.

:class:`~django_broadcaster.events.CloudEvent` checks itself with these when it is built; each
check raises :class:`~django_broadcaster.exceptions.InvalidEvent` naming what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import ItemsView, Iterator, KeysView, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from django.utils.dateparse import parse_datetime

from .exceptions import InvalidEvent

CORE_ATTRIBUTES: Final = frozenset(
    {"id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time"}
)
ExtensionValue = str | int | bool

_EXTENSION_NAME = re.compile(r"[a-z0-9]{1,20}")
# RFC 3986 URI-reference: unreserved, reserved and percent-encoded characters only.
_URI_REFERENCE = re.compile(r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
# Control characters (C0, DEL, C1) and lone surrogates, which the spec forbids in strings.
_FORBIDDEN_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_INT32 = range(-(2**31), 2**31)


class Extensions(Mapping[str, ExtensionValue]):
    """The read-only extension attributes of a :class:`CloudEvent`, by name.

    Unlike ``types.MappingProxyType`` it can be pickled and deep-copied, so events can be handed
    to task queues, caches and ``dataclasses.asdict()``.
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, ExtensionValue]) -> None:
        self._values = dict(values)

    def __getitem__(self, name: str) -> ExtensionValue:
        return self._values[name]

    # Mapping's own get(), `in`, keys() and items() go through __getitem__ (catching its KeyError
    # for a missing name); the worker calls them for every event, so they read the dict instead.

    def get(self, name: str, default: Any = None) -> Any:
        """Return the extension ``name``, or ``default`` when the event has none by that name."""
        return self._values.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def keys(self) -> KeysView[str]:
        """Return the extensions' names."""
        return self._values.keys()

    def items(self) -> ItemsView[str, ExtensionValue]:
        """Return the extensions' ``(name, value)`` pairs."""
        return self._values.items()

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return repr(self._values)

    def __reduce__(self) -> tuple[type[Extensions], tuple[dict[str, ExtensionValue]]]:
        return (Extensions, (self._values,))


def format_timestamp(value: datetime, name: str = "timestamp") -> str:
    """Return ``value`` (timezone-aware) as an RFC 3339 timestamp in UTC, e.g. ``...T12:00:00Z``.

    Raises :class:`InvalidEvent` for a naive datetime.
    """
    if require_aware(name, value):  # not at UTC's offset
        value = value.astimezone(timezone.utc)
    return value.isoformat()[:-6] + "Z"  # in UTC, isoformat() ends with "+00:00"


def parse_timestamp(value: str) -> datetime:
    """Return the RFC 3339 timestamp ``value`` as an aware datetime, or raise ``InvalidEvent``."""
    parsed = parse_datetime(value)
    if parsed is None or parsed.tzinfo is None:
        raise InvalidEvent(f"{value!r} is not an RFC 3339 timestamp with a time zone.")
    return parsed


def require_aware(name: str, value: datetime) -> timedelta:
    """Return the offset from UTC of ``value``, a timezone-aware datetime.

    Raises :class:`InvalidEvent` if ``value`` is not a datetime, or is naive.
    """
    if not isinstance(value, datetime):
        raise InvalidEvent(f"{name} must be a datetime, got {type(value).__name__}.")
    offset = value.utcoffset()  # None without a tzinfo, or when the tzinfo gives none
    if offset is None:
        raise InvalidEvent(
            f"{name} must be timezone-aware; use django.utils.timezone.now() or attach a tzinfo."
        )
    return offset


def require_string(name: str, value: object) -> None:
    """Raise :class:`InvalidEvent` unless ``value`` is a non-empty string the spec allows."""
    if not isinstance(value, str):
        raise InvalidEvent(f"{name} must be a string, got {type(value).__name__}.")
    if not value:
        raise InvalidEvent(f"{name} must not be empty.")
    if _FORBIDDEN_CHARS.search(value):
        raise InvalidEvent(f"{name} must not contain control characters or lone surrogates.")


def require_uri_reference(name: str, value: object) -> None:
    """Raise :class:`InvalidEvent` unless ``value`` is an RFC 3986 URI-reference."""
    require_string(name, value)
    assert isinstance(value, str)
    scheme, colon, rest = value.partition(":")
    first_segment_is_scheme = colon and "/" not in scheme and "?" not in scheme
    if not _URI_REFERENCE.fullmatch(value) or (
        first_segment_is_scheme and "#" not in scheme and not _SCHEME.fullmatch(scheme)
    ):
        raise InvalidEvent(
            f"{name} must be a URI-reference such as 'order-service' or "
            f"'https://example.com/orders', got {value!r}."
        )


def is_absolute_uri(value: str) -> bool:
    """Return whether ``value`` is an absolute URI (a scheme and more)."""
    scheme, colon, rest = value.partition(":")
    return bool(colon and rest and _SCHEME.fullmatch(scheme) and _URI_REFERENCE.fullmatch(value))


def validated_extensions(
    extensions: Mapping[str, ExtensionValue],
) -> Extensions:
    """Return ``extensions`` read-only; raise :class:`InvalidEvent` naming a bad one."""
    if not isinstance(extensions, Mapping):
        raise InvalidEvent(f"extensions must be a mapping, got {type(extensions).__name__}.")
    for name, value in extensions.items():
        _check_extension(name, value)
    return Extensions(extensions)


def _check_extension(name: object, value: object) -> None:
    if not isinstance(name, str) or not _EXTENSION_NAME.fullmatch(name):
        raise InvalidEvent(
            f"extension name {name!r} is invalid: use 1 to 20 lowercase letters and digits."
        )
    if name in CORE_ATTRIBUTES or name == "data":
        raise InvalidEvent(f"extension name {name!r} is reserved by the CloudEvents spec.")
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if value not in _INT32:
            raise InvalidEvent(f"extension {name!r} must fit in a signed 32-bit integer.")
        return
    if isinstance(value, str):
        require_string(f"extension {name!r}", value)
        if name == "expirytime":
            parse_timestamp(value)
        return
    raise InvalidEvent(
        f"extension {name!r} must be a string, an integer or a boolean, got {type(value).__name__}."
    )
