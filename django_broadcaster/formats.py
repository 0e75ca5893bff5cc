"""The CloudEvents JSON format for :class:`~django_broadcaster.events.CloudEvent` values.

:func:`to_structured_json` writes an event as structured-mode JSON (what the Redis backend, the
console backend and Kafka's structured mode send); :func:`to_sdk_event` turns it into the
official SDK's event, for the SDK's readers and bindings; :data:`JSON_FORMAT` is the SDK's JSON
format, for reading.
"""

from __future__ import annotations

import base64
import json
from typing import Final

from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SDKCloudEvent

from .events import CloudEvent, format_timestamp
from .exceptions import InvalidEvent

JSON_FORMAT: Final = JSONFormat()
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
    ``data_base64`` when it is bytes. ``ascii_only`` writes every other character as a JSON
    escape, which also works for data holding a lone surrogate: UTF-8 cannot encode one, and
    ``UnicodeEncodeError`` is raised without it. Raises :class:`InvalidEvent` if ``event`` has
    no ``id`` yet. Written directly rather than through the SDK, which costs twice as much on
    the worker's hot path; the tests decode its output with the SDK.
    """
    if event.id is None:
        raise InvalidEvent("The event has no id: only published events can be converted.")
    document = event.attributes()
    if event.time is not None:
        document["time"] = format_timestamp(event.time)
    stored = stored_data_json(event)
    if stored is None:
        if isinstance(event.data, bytes):
            document["data_base64"] = base64.b64encode(event.data).decode()
        elif event.data is not None:
            document["data"] = event.data
    text = (_ASCII_ENCODER if ascii_only else _ENCODER).encode(document)
    # Read from the outbox: its own JSON text of the data is spliced in, not encoded again.
    return (text if stored is None else f'{text[:-1]},"data":{stored}}}').encode()


def stored_data_json(event: CloudEvent) -> str | None:
    """Return the outbox's JSON text of ``event``'s data, for writers to send as it is.

    Only an event the worker read from a row has one (see :meth:`CloudEvent.trusted`); for any
    other event, and for stored JSON ``null`` (no data), return ``None``: the writer then uses
    ``event.data``.
    """
    stored = event._data_json
    return None if stored == "null" else stored
