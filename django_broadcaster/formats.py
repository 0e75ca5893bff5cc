"""The CloudEvents JSON format for :class:`~django_broadcaster.events.CloudEvent` values.

:func:`to_structured_json` writes an event as structured-mode JSON (what the Redis backend, the
console backend and Kafka's structured mode send) and :func:`read_structured_json` reads one;
:func:`to_sdk_event` turns an event into the official SDK's, for the SDK's readers and bindings;
:data:`JSON_FORMAT` is the SDK's JSON format, reading data as strictly as :func:`parse_json`.

Reading is as strict as publishing: the publisher writes only JSON's own values, never NaN or
Infinity (``json`` reads and writes them, but they are not JSON), so a message holding them, or
holding invalid JSON where its content type declares JSON, is refused rather than read another way.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any, Final

from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SDKCloudEvent

from .events import (
    DEFAULT_DATACONTENTTYPE,
    CloudEvent,
    format_timestamp,
    is_json_content_type,
    parse_timestamp,
)
from .exceptions import InvalidEvent


class StrictJSONFormat(JSONFormat):
    """The SDK's JSON format, except that data declared JSON must be JSON (see :func:`parse_json`).

    The SDK reads such data that does not parse as text, and reads NaN and Infinity.
    """

    def read_data(self, body: bytes, datacontenttype: str | None) -> Any:
        """Return the data in ``body``: a JSON value, text or bytes. Raises ``ValueError``."""
        if body and is_json_content_type(datacontenttype or DEFAULT_DATACONTENTTYPE):
            return parse_json(body)
        return super().read_data(body, datacontenttype)


JSON_FORMAT: Final = StrictJSONFormat()
#: The content type of a structured-mode message, as the Kafka and AMQP bindings write it.
STRUCTURED_CONTENT_TYPE: Final = "application/cloudevents+json; charset=UTF-8"
#: Compact, and UTF-8 rather than ``\u`` escapes. Built once: ``json.dumps()`` with options
#: builds an encoder on every call.
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
#: Every non-ASCII character as a ``\u`` escape, lone surrogates included (UTF-8 has none).
_ASCII_ENCODER: Final = json.JSONEncoder(separators=(",", ":"))


def to_sdk_event(event: CloudEvent) -> SDKCloudEvent:
    """Return the cloudevents SDK's v1 event for ``event``.

    Raises :class:`InvalidEvent` if ``event`` has no ``id`` yet (it has not been published).
    """
    if event.id is None:
        raise InvalidEvent("The event has no id: only published events can be converted.")
    return SDKCloudEvent(event.attributes(), event.data)


def to_structured_json(event: CloudEvent, *, ascii_only: bool = False) -> bytes:
    """Return ``event`` in the CloudEvents JSON format (structured mode), as UTF-8 bytes.

    Attributes and extensions are members; ``time`` is RFC 3339 in UTC; ``data`` is embedded as a
    JSON value (for an event read from the outbox, the stored JSON text of it), or as
    ``data_base64`` when it is bytes; data of a content type that is not JSON is written as a
    string (see :func:`text_unless_json`). ``ascii_only`` writes every other character as a JSON
    escape, which also works for data holding a lone surrogate: UTF-8 cannot encode one, and
    ``UnicodeEncodeError`` is raised without it. Raises :class:`InvalidEvent` if ``event`` has
    no ``id`` yet. Written directly rather than through the SDK, which is slower on the worker's
    hot path (docs/performance.md); the tests decode its output with the SDK.
    """
    if event.id is None:
        raise InvalidEvent("The event has no id: only published events can be converted.")
    document = event.attributes()
    if event.time is not None:
        document["time"] = format_timestamp(event.time)
    stored = stored_data_json(event)
    content_type = event.datacontenttype
    if content_type != DEFAULT_DATACONTENTTYPE and not is_json_content_type(content_type):
        stored = None  # the data is text: written as a JSON string below
    if stored is None:
        data = text_unless_json(event.data, content_type)
        if isinstance(data, bytes):
            document["data_base64"] = base64.b64encode(data).decode()
        elif data is not None:
            document["data"] = data
    text = (_ASCII_ENCODER if ascii_only else _ENCODER).encode(document)
    # Read from the outbox: its own JSON text of the data is spliced in, not encoded again.
    return (text if stored is None else f'{text[:-1]},"data":{stored}}}').encode()


def read_structured_json(value: bytes | str) -> tuple[dict[str, Any], Any]:
    """Return the attributes and the data of the CloudEvents JSON document ``value``.

    Members that are ``null`` are left out (the format says they mean unset), ``time`` becomes
    a datetime and ``data_base64`` bytes. Raises ``ValueError`` (``InvalidEvent`` for a bad
    time) when ``value`` is no such document or breaks :func:`parse_json`'s rules.
    """
    return read_structured_document(parse_json(value))


def read_structured_document(document: Any) -> tuple[dict[str, Any], Any]:
    """Return the attributes and the data of the parsed CloudEvents JSON ``document``.

    As :func:`read_structured_json`, for a document already parsed (a member of a batch).
    """
    if not isinstance(document, dict):
        raise ValueError(f"the JSON is {type(document).__name__}, not an object")
    attributes = {name: member for name, member in document.items() if member is not None}
    data, encoded = attributes.pop("data", None), attributes.pop("data_base64", None)
    if encoded is not None:
        if data is not None:
            raise ValueError("the event has both data and data_base64")
        data = base64.b64decode(encoded, validate=True)
    if "time" in attributes:
        attributes["time"] = parse_timestamp(attributes["time"])
    return attributes, text_unless_json(data, attributes.get("datacontenttype", ""))


def text_unless_json(data: Any, content_type: str) -> Any:
    """Return ``data`` as every transport hands it over under ``content_type``.

    That is ``data`` itself, unless ``content_type`` (given, and not JSON) says it is text while
    ``data`` is neither text, bytes nor ``None``: then its compact JSON text, since the JSON
    format carries data of such a type only as a string (CloudEvents JSON format, 3.1). Only
    outbox rows written before :class:`~django_broadcaster.events.CloudEvent` refused such data,
    and 0.2.0's messages, hold it.
    """
    if data is None or isinstance(data, str | bytes) or not content_type:
        return data
    return data if is_json_content_type(content_type) else _ENCODER.encode(data)


def parse_json(text: bytes | str) -> Any:
    """Return the value of the JSON ``text``, UTF-8 when it is bytes.

    Raises ``ValueError`` for invalid JSON, and for what Python's ``json`` reads but the publisher
    never writes: ``NaN``, ``Infinity`` and numbers too large for a float.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"{text} is too large for a float")
    return number


def stored_data_json(event: CloudEvent) -> str | None:
    """Return the outbox's JSON text of ``event``'s data, for writers to send as it is.

    Only an event the worker read from a row has one (see :meth:`CloudEvent.trusted`); for any
    other event, and for stored JSON ``null`` (no data), return ``None``: the writer then uses
    ``event.data``.
    """
    stored = event._data_json
    return None if stored == "null" else stored
