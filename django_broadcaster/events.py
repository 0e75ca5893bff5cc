"""The CloudEvent value, and the CloudEvents 1.0 rules its attributes must follow.

:class:`CloudEvent` is a frozen dataclass that checks itself when built: a bad event raises
:class:`~.exceptions.InvalidEvent` where it is created. Publishers write it, backends send it.
"""

from __future__ import annotations

import json
import re
from collections.abc import ItemsView, Iterator, KeysView, Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Final

from django.utils.dateparse import parse_datetime

from .exceptions import InvalidEvent

SPECVERSION: Final = "1.0"
DEFAULT_DATACONTENTTYPE: Final = "application/json"
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


@dataclass(frozen=True)
class CloudEvent:
    """A CloudEvents 1.0 event.

    ``event_type`` and ``source`` are required; ``id`` (the outbox row's) and ``time`` are set when
    the event is published. Building one validates every attribute and raises ``InvalidEvent``
    naming the first that breaks the spec. ``data`` is text unless ``datacontenttype`` declares
    JSON; the publisher checks that JSON data is strict JSON that fits the size limit.
    """

    event_type: str
    source: str
    data: Any = None
    subject: str | None = None
    id: str | None = None
    time: datetime | None = None
    datacontenttype: str = DEFAULT_DATACONTENTTYPE
    dataschema: str | None = None
    extensions: Mapping[str, ExtensionValue] = field(default_factory=dict)

    specversion = SPECVERSION
    #: The JSON text of ``data`` as stored, on an event :meth:`trusted` built from a row: writers
    #: send it as it is. Not a field: an event built otherwise, or by ``replace()``, has none.
    _data_json: ClassVar[str | None] = None

    def __post_init__(self) -> None:
        require_string("type", self.event_type)
        require_uri_reference("source", self.source)
        for name in ("subject", "id", "dataschema"):
            value = getattr(self, name)
            if value is not None:
                require_string(name, value)
        require_string("datacontenttype", self.datacontenttype)
        require_data_fits(self.data, self.datacontenttype)
        if self.dataschema is not None and not is_absolute_uri(self.dataschema):
            raise InvalidEvent(f"dataschema must be an absolute URI, got {self.dataschema!r}.")
        if self.time is not None:
            require_aware("time", self.time)
        object.__setattr__(self, "extensions", validated_extensions(self.extensions))

    @classmethod
    def trusted(cls, data_json: str | None = None, **values: Any) -> CloudEvent:
        """Return an event built from ``values`` without validating them again.

        Only for values validated when first published: the worker rebuilds a row's event on
        every attempt. ``values`` are named as the fields (another name lands on the instance
        unchecked); missing ones take their defaults. With ``data_json`` (valid JSON, as the
        outbox's column holds), ``data`` is decoded when first read: most deliveries send the text.
        """
        event = object.__new__(cls)
        attributes = event.__dict__  # frozen: one update beats a setattr per field
        attributes.update(_DEFAULTS)
        attributes.update(values)
        attributes["extensions"] = Extensions(attributes["extensions"])
        if data_json is not None:
            del attributes["data"]  # decoded from the text when first read (__getattr__)
            attributes["_data_json"] = data_json
        return event

    def __getattr__(self, name: str) -> Any:
        # Reached only for an attribute the instance lacks: ``data`` of an event built by
        # trusted() with its JSON text, decoded here once (the class has no ``data`` default).
        if name != "data" or "_data_json" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        data = json.loads(self.__dict__["_data_json"])
        object.__setattr__(self, "data", data)
        return data

    @property
    def type(self) -> str:
        """Return the CloudEvents ``type`` attribute (an alias of ``event_type``)."""
        return self.event_type

    @property
    def expires_at(self) -> datetime | None:
        """Return the ``expirytime`` extension as a datetime, or ``None`` when it is absent."""
        value = self.extensions.get("expirytime")
        return None if value is None else parse_timestamp(str(value), "expirytime")

    @property
    def partition_key(self) -> str | None:
        """Return the ``partitionkey`` extension, or ``None`` when the event has none."""
        value = self.extensions.get("partitionkey")
        return None if value is None else str(value)

    def attributes(self) -> dict[str, Any]:
        """Return the context attributes and extensions (not ``data``), named as in the spec."""
        attributes: dict[str, Any] = {
            "specversion": SPECVERSION,
            "id": self.id,
            "source": self.source,
            "type": self.event_type,
            "datacontenttype": self.datacontenttype,
            "subject": self.subject,
            "dataschema": self.dataschema,
            "time": self.time,
        }
        attributes.update(self.extensions)
        return {name: value for name, value in attributes.items() if value is not None}


# Each attribute's default, for CloudEvent.trusted (None stands in for the required ones).
_DEFAULTS: Final = {f.name: None if f.default is MISSING else f.default for f in fields(CloudEvent)}
_DEFAULTS["extensions"] = {}

# Without a class-level default, an unset ``data`` reaches __getattr__; __init__ has the default.
del CloudEvent.data


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

    # The worker calls these for every event: Mapping's go through __getitem__ and KeyError.

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
    """Return aware ``value`` in RFC 3339, in UTC (``...T12:00:00Z``); refuse a naive one."""
    if require_aware(name, value):  # not at UTC's offset
        value = value.astimezone(timezone.utc)
    return value.isoformat()[:-6] + "Z"  # in UTC, isoformat() ends with "+00:00"


def parse_timestamp(value: str, name: str = "timestamp") -> datetime:
    """Return the RFC 3339 timestamp ``value`` as an aware datetime, or raise ``InvalidEvent``."""
    try:
        parsed = parse_datetime(value)  # ValueError: well formed, but no such day (02-30)
    except ValueError as exc:
        raise InvalidEvent(f"{name} {value!r} is no date and time: {exc}.") from exc
    if parsed is None or parsed.tzinfo is None:
        raise InvalidEvent(f"{name} {value!r} is not an RFC 3339 timestamp with a time zone.")
    require_aware(name, parsed)
    return parsed


def require_aware(name: str, value: datetime) -> timedelta:
    """Return the offset from UTC of ``value``, a timezone-aware datetime that is in years 1 to
    9999 in UTC too; raise :class:`InvalidEvent` if it is no such datetime."""
    if not isinstance(value, datetime):
        raise InvalidEvent(f"{name} must be a datetime, got {type(value).__name__}.")
    offset = value.utcoffset()  # None without a tzinfo, or when the tzinfo gives none
    if offset is None:
        raise InvalidEvent(
            f"{name} must be timezone-aware; use django.utils.timezone.now() or attach a tzinfo."
        )
    try:
        if offset:  # databases store it in UTC
            value.astimezone(timezone.utc)
    except OverflowError as exc:
        raise InvalidEvent(f"{name} {value.isoformat()} is not in years 1 to 9999 in UTC.") from exc
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
    scheme, colon, _ = value.partition(":")
    first_segment_is_scheme = colon and "/" not in scheme and "?" not in scheme
    if not _URI_REFERENCE.fullmatch(value) or (
        first_segment_is_scheme and "#" not in scheme and not _SCHEME.fullmatch(scheme)
    ):
        raise InvalidEvent(
            f"{name} must be a URI-reference such as 'order-service' or "
            f"'https://example.com/orders', got {value!r}."
        )


def require_data_fits(data: object, content_type: str) -> None:
    """Raise :class:`InvalidEvent` unless ``data`` is text, bytes, ``None`` or declared JSON."""
    fits = data is None or isinstance(data, str | bytes) or content_type == DEFAULT_DATACONTENTTYPE
    if not fits and not is_json_content_type(content_type):
        raise InvalidEvent(
            f"datacontenttype {content_type!r} does not declare JSON, so data must be text "
            f"(or bytes), got {type(data).__name__}: pass its text, or publish it as JSON."
        )


def is_json_content_type(content_type: str) -> bool:
    """Return whether ``content_type`` declares JSON: ``*/json`` or ``*/*+json``, any parameters."""
    subtype = content_type.partition(";")[0].strip().lower().partition("/")[2]
    return subtype == "json" or subtype.endswith("+json")


def is_absolute_uri(value: str) -> bool:
    """Return whether ``value`` is an absolute URI (a scheme and more)."""
    scheme, colon, rest = value.partition(":")
    return bool(colon and rest and _SCHEME.fullmatch(scheme) and _URI_REFERENCE.fullmatch(value))


def validated_extensions(extensions: Mapping[str, ExtensionValue]) -> Extensions:
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
    if not isinstance(value, str | int):  # bool is an int
        raise InvalidEvent(
            f"extension {name!r} must be a string, an integer or a boolean, "
            f"not {type(value).__name__}."
        )
    if isinstance(value, str):
        require_string(f"extension {name!r}", value)
    elif int(value) not in _INT32:  # int(): range's fast test is for int itself
        raise InvalidEvent(f"extension {name!r} must fit in a signed 32-bit integer.")
    if name == "expirytime":
        parse_timestamp(str(value), "expirytime")
