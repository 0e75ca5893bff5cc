"""The CloudEvent value: what publishers write, what backends send and what handlers receive.

:class:`CloudEvent` is a frozen dataclass that validates itself against CloudEvents 1.0 when it is
built, so a bad event fails where it is created. :mod:`.formats` writes it in the CloudEvents
JSON format and turns it into the SDK's event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime
from typing import Any, ClassVar, Final

from .attributes import (
    CORE_ATTRIBUTES,
    Extensions,
    ExtensionValue,
    format_timestamp,
    is_absolute_uri,
    parse_timestamp,
    require_aware,
    require_string,
    require_uri_reference,
    validated_extensions,
)
from .exceptions import InvalidEvent

__all__ = [  # the attribute helpers are re-exported: they were first importable from here
    "CORE_ATTRIBUTES",
    "DEFAULT_DATACONTENTTYPE",
    "SPECVERSION",
    "CloudEvent",
    "ExtensionValue",
    "Extensions",
    "encode_data",
    "encoded_copy",
    "format_timestamp",
    "parse_timestamp",
    "require_aware",
]

SPECVERSION: Final = "1.0"
DEFAULT_DATACONTENTTYPE: Final = "application/json"


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
    #: The JSON text of ``data`` as the outbox stored it, on an event the worker read from a row
    #: (see :meth:`trusted`): writers send it as it is, and ``data`` is decoded from it only when
    #: first read. Not a field: an event built any other way, or changed with
    #: ``dataclasses.replace()``, has none.
    _data_json: ClassVar[str | None] = None

    def __post_init__(self) -> None:
        require_string("type", self.event_type)
        require_uri_reference("source", self.source)
        for name in ("subject", "id", "dataschema"):
            value = getattr(self, name)
            if value is not None:
                require_string(name, value)
        require_string("datacontenttype", self.datacontenttype)
        if self.dataschema is not None and not is_absolute_uri(self.dataschema):
            raise InvalidEvent(f"dataschema must be an absolute URI, got {self.dataschema!r}.")
        if self.time is not None:
            require_aware("time", self.time)
        object.__setattr__(self, "extensions", validated_extensions(self.extensions))

    @classmethod
    def trusted(cls, data_json: str | None = None, **values: Any) -> CloudEvent:
        """Return an event built from ``values`` without validating them again.

        Only for values that were validated when first published: the worker rebuilds each outbox
        row's event on every attempt, and the row was written from a validated event. ``values``
        are named as the fields (any other name would land on the instance unchecked); missing
        ones take their defaults. With ``data_json`` (valid JSON text, as the outbox's
        JSON column guarantees), ``data`` is left out of ``values`` and decoded from it when
        first read: most deliveries only send the text.
        """
        event = object.__new__(cls)
        # Written straight to the instance's dict: frozen, it refuses setattr, and going round
        # that with object.__setattr__() per field made this call a third slower.
        attributes = event.__dict__
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

# Without a class-level default, an unset ``data`` reaches __getattr__; __init__ has the default.
del CloudEvent.data


def encode_data(data: Any, *, max_size: int | None = None) -> bytes:
    """Return ``data`` encoded as strict JSON, or raise :class:`InvalidEvent` naming the problem.

    Strict means only JSON's own types (``dict`` with string keys, ``list``, ``str``, ``int``,
    ``float``, ``bool``, ``None``), and no NaN or Infinity, so the event decodes the same way
    everywhere. ``max_size`` is a limit in bytes on the encoded data.
    """
    text, _ = encoded_copy(data, max_size=max_size)
    return text.encode()


def encoded_copy(data: Any, *, max_size: int | None = None) -> tuple[str, Any]:
    """Return the text of what :func:`encode_data` returns, and a copy of ``data`` decoded from it.

    The copy equals ``data`` and shares no object with it, so the caller may keep both without
    one changing under the other. Raises :class:`InvalidEvent` as :func:`encode_data` does.
    """
    try:
        # ASCII only (ensure_ascii), so the text has as many characters as its UTF-8 has bytes.
        text = json.dumps(data, allow_nan=False, separators=(",", ":"))
    except ValueError as exc:
        raise InvalidEvent(f"data must not contain NaN or Infinity: {exc}.") from exc
    except TypeError as exc:
        raise InvalidEvent(
            f"data must be JSON-serializable ({exc}); convert dates, decimals and UUIDs "
            "to strings or numbers before publishing."
        ) from exc
    copy = json.loads(text)
    if copy != data:
        raise InvalidEvent(
            "data would change when encoded as JSON (tuples become lists, non-string keys "
            "become strings); pass lists and dicts with string keys."
        )
    if max_size is not None and len(text) > max_size:
        raise InvalidEvent(
            f"data is {len(text)} bytes encoded, over the limit of {max_size} bytes "
            '(BROADCASTER["MAX_DATA_SIZE"]).'
        )
    return text, copy
