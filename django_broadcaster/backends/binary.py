"""What the binary content mode of every CloudEvents binding shares: attribute text, data bytes.

In binary mode a binding carries each attribute as a header or property (named its own way:
``ce_`` for Kafka, ``cloudEvents_`` for AMQP) and the data alone as the body. The values and
the body are the same whatever the transport, so the bindings build them here. They write them
directly rather than through the cloudevents SDK, whose binary writers are slower and encode
data that is not a dict as Python text (see :mod:`.kafka.messages`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ..events import DEFAULT_DATACONTENTTYPE, CloudEvent, format_timestamp, is_json_content_type
from ..exceptions import InvalidEvent
from ..formats import JSON_FORMAT, stored_data_json, text_unless_json


def require_id(event: CloudEvent) -> None:
    """Raise ``InvalidEvent`` unless ``event`` has an id: only published events are sent."""
    if event.id is None:
        raise InvalidEvent("The event has no id: only published events can be sent.")


def attribute_text(value: Any) -> str:
    """Return ``value`` in its CloudEvents canonical string form (RFC 3339 UTC for a time)."""
    if type(value) is str:  # most attributes are: the quick case first
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_timestamp(value)
    return str(value)


def binary_data(event: CloudEvent) -> bytes | None:
    """Return the body of ``event`` in binary mode: JSON text for JSON data, ``None`` for none.

    Raises ``InvalidEvent`` when JSON data cannot be encoded.
    """
    stored, content_type = stored_data_json(event), event.datacontenttype
    is_json = content_type == DEFAULT_DATACONTENTTYPE or is_json_content_type(content_type)
    if stored is not None and is_json:
        return stored.encode()
    if event.data is None:
        return None
    if is_json:
        return _json(event.data)
    return JSON_FORMAT.write_data(text_unless_json(event.data, content_type), content_type)


def _json(data: Any) -> bytes:
    """Return ``data`` as compact JSON, or raise ``InvalidEvent``.

    Publishing checked the data strictly (:func:`~django_broadcaster.publishers.encoded_copy`),
    so this only encodes it, as the structured mode's writer does.
    """
    try:
        return json.dumps(data, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidEvent(f"data cannot be encoded as JSON: {exc}.") from exc
