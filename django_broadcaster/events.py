"""The CloudEvent value: what publishers write, what backends send and what handlers receive.

:class:`CloudEvent` is a frozen dataclass that validates itself against CloudEvents 1.0 when it is
built, so a bad event fails where it is created. :mod:`.formats` writes it in the CloudEvents
JSON format and turns it into the SDK's event.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, Final

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

    ``event_type`` and ``source`` are required; ``id`` and ``time`` are set by the outbox when the
    event is published (the id is the outbox row's id). Building an instance validates every
    attribute and raises :class:`~django_broadcaster.exceptions.InvalidEvent` naming the first
    attribute that breaks the spec. ``data`` must be JSON-serializable (checked at publish time,
    where the payload size limit is known too).
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

    def __post_init__(self) -> None:
        _require_string("type", self.event_type)
        _require_uri_reference("source", self.source)
        for name in ("subject", "id", "dataschema"):
            value = getattr(self, name)
            if value is not None:
                _require_string(name, value)
        _require_string("datacontenttype", self.datacontenttype)
        if self.dataschema is not None and not _is_absolute_uri(self.dataschema):
            raise InvalidEvent(f"dataschema must be an absolute URI, got {self.dataschema!r}.")
        if self.time is not None:
            require_aware("time", self.time)
        object.__setattr__(self, "extensions", _validated_extensions(self.extensions))

    @classmethod
    def trusted(cls, **values: Any) -> CloudEvent:
        """Return an event built from ``values`` without validating them again.

        Only for values that were validated when first published: the worker rebuilds each outbox
        row's event on every attempt, and the row was written from a validated event. Missing
        attributes take their defaults.
        """
        event = object.__new__(cls)
        for name, default in _DEFAULTS.items():
            object.__setattr__(event, name, values.get(name, default))
        object.__setattr__(event, "extensions", MappingProxyType(dict(event.extensions)))
        return event

    @property
    def type(self) -> str:
        """Return the CloudEvents ``type`` attribute (an alias of ``event_type``)."""
        return self.event_type

    @property
    def expires_at(self) -> datetime | None:
        """Return the ``expirytime`` extension as a datetime, or ``None`` when it is absent."""
        value = self.extensions.get("expirytime")
        return None if value is None else parse_timestamp(str(value))

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


# Each attribute's default, for CloudEvent.trusted (required ones have none: None stands in).
_DEFAULTS: Final[dict[str, Any]] = {
    f.name: (
        f.default
        if f.default is not MISSING
        else f.default_factory()
        if f.default_factory is not MISSING
        else None
    )
    for f in fields(CloudEvent)
}


def encode_data(data: Any, *, max_size: int | None = None) -> bytes:
    """Return ``data`` encoded as strict JSON, or raise :class:`InvalidEvent` naming the problem.

    Strict means only JSON's own types (``dict`` with string keys, ``list``, ``str``, ``int``,
    ``float``, ``bool``, ``None``), and no NaN or Infinity, so the event decodes the same way
    everywhere. ``max_size`` is a limit in bytes on the encoded data.
    """
    try:
        encoded = json.dumps(data, allow_nan=False, separators=(",", ":")).encode()
    except ValueError as exc:
        raise InvalidEvent(f"data must not contain NaN or Infinity: {exc}.") from exc
    except TypeError as exc:
        raise InvalidEvent(
            f"data must be JSON-serializable ({exc}); convert dates, decimals and UUIDs "
            "to strings or numbers before publishing."
        ) from exc
    if json.loads(encoded) != data:
        raise InvalidEvent(
            "data would change when encoded as JSON (tuples become lists, non-string keys "
            "become strings); pass lists and dicts with string keys."
        )
    if max_size is not None and len(encoded) > max_size:
        raise InvalidEvent(
            f"data is {len(encoded)} bytes encoded, over the limit of {max_size} bytes "
            '(BROADCASTER["MAX_DATA_SIZE"]).'
        )
    return encoded


def format_timestamp(value: datetime, name: str = "timestamp") -> str:
    """Return ``value`` (timezone-aware) as an RFC 3339 timestamp in UTC, e.g. ``...T12:00:00Z``.

    Raises :class:`InvalidEvent` for a naive datetime.
    """
    require_aware(name, value)
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def parse_timestamp(value: str) -> datetime:
    """Return the RFC 3339 timestamp ``value`` as an aware datetime, or raise ``InvalidEvent``."""
    parsed = parse_datetime(value)
    if parsed is None or parsed.tzinfo is None:
        raise InvalidEvent(f"{value!r} is not an RFC 3339 timestamp with a time zone.")
    return parsed


def require_aware(name: str, value: datetime) -> None:
    """Raise :class:`InvalidEvent` unless ``value`` is a timezone-aware datetime."""
    if not isinstance(value, datetime):
        raise InvalidEvent(f"{name} must be a datetime, got {type(value).__name__}.")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidEvent(
            f"{name} must be timezone-aware; use django.utils.timezone.now() or attach a tzinfo."
        )


def _require_string(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise InvalidEvent(f"{name} must be a string, got {type(value).__name__}.")
    if not value:
        raise InvalidEvent(f"{name} must not be empty.")
    if _FORBIDDEN_CHARS.search(value):
        raise InvalidEvent(f"{name} must not contain control characters or lone surrogates.")


def _require_uri_reference(name: str, value: object) -> None:
    _require_string(name, value)
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


def _is_absolute_uri(value: str) -> bool:
    scheme, colon, rest = value.partition(":")
    return bool(colon and rest and _SCHEME.fullmatch(scheme) and _URI_REFERENCE.fullmatch(value))


def _validated_extensions(
    extensions: Mapping[str, ExtensionValue],
) -> Mapping[str, ExtensionValue]:
    if not isinstance(extensions, Mapping):
        raise InvalidEvent(f"extensions must be a mapping, got {type(extensions).__name__}.")
    for name, value in extensions.items():
        _check_extension(name, value)
    return MappingProxyType(dict(extensions))


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
        _require_string(f"extension {name!r}", value)
        if name == "expirytime":
            parse_timestamp(value)
        return
    raise InvalidEvent(
        f"extension {name!r} must be a string, an integer or a boolean, got {type(value).__name__}."
    )
