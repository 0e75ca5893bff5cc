"""The AsyncAPI messages of one event type on one kind of channel, as the backends write them.

Binary mode carries the attributes as headers (``ce_`` on Kafka, ``ce-`` over HTTP,
``cloudEvents_`` in RabbitMQ's headers table; ``datacontenttype`` is the content type) and the
data as the payload; structured mode carries the whole event as CloudEvents JSON; batched
webhooks an array of them; a Redis stream entry holds the structured event in its
``cloud_event`` field beside 0.1.1's fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from ..dead_letters import ATTEMPTS, DESTINATION, ERROR, REASON
from ..formats import STRUCTURED_CONTENT_TYPE

#: The prefix of the binary mode's attribute headers, by channel kind.
PREFIXES: Final = {"kafka": "ce_", "http": "ce-", "amqp": "cloudEvents_"}
BATCH_CONTENT_TYPE: Final = "application/cloudevents-batch+json; charset=UTF-8"
_TEXT: Final = {"type": "string"}
_TIME: Final = {"type": "string", "format": "date-time"}
#: The attributes the publisher writes, and the extensions it may add.
ATTRIBUTES: Final[dict[str, dict[str, Any]]] = {
    "specversion": {"const": "1.0"},
    "id": {**_TEXT, "description": "the event's id (a UUID): the same on a redelivery"},
    "source": {**_TEXT, "format": "uri-reference"},
    "type": _TEXT,
    "time": _TIME,
    "subject": _TEXT,
    "dataschema": {**_TEXT, "format": "uri"},
    "partitionkey": {**_TEXT, "description": "events of one key keep their order"},
    "expirytime": {**_TIME, "description": "after this the event is not sent"},
    "traceparent": {**_TEXT, "description": "W3C trace context of the publishing code"},
    "tracestate": _TEXT,
}
REQUIRED: Final = ("specversion", "id", "source", "type", "time")
#: The extensions a dead letter adds (:mod:`...dead_letters`), all of them always.
DEAD_LETTER_ATTRIBUTES: Final[dict[str, dict[str, Any]]] = {
    REASON: {"enum": ["retriesexhausted", "rejected"], "description": "why it failed"},
    DESTINATION: {**_TEXT, "description": "the backend alias or handler where it failed"},
    ATTEMPTS: {"type": ["integer", "string"], "description": "deliveries tried there"},
    ERROR: {**_TEXT, "description": "the last error there, one line"},
}
#: The Standard Webhooks headers every webhook request carries.
WEBHOOK_HEADERS: Final = {
    "webhook-id": {**_TEXT, "description": "the event's id, or batch- and a digest of them"},
    "webhook-timestamp": {**_TEXT, "description": "Unix seconds"},
    "webhook-signature": {**_TEXT, "description": "v1,<base64 HMAC-SHA256>, space-separated"},
}
EXAMPLE_ID: Final = "1b6f1f3e-4c1d-4d8e-9a57-0c0de0c0ffee"
EXAMPLE_TIME: Final = "2026-01-01T12:00:00Z"


@dataclass(frozen=True)
class EventInfo:
    """What the document knows of one event type: its data's schema and an example."""

    key: str  #: its name in ``components`` (``other`` for any type not listed)
    event_type: str | None  #: ``None``: any type
    schema: dict[str, Any]  #: the data's schema, or a ``$ref`` to it
    source: str  #: a source for the examples
    example: Any = None  #: example data, when the schema gives one
    typed: bool = False
    dead_letter: bool = False  #: the event as a dead letter: with the failure's extensions


def message(kind: str, mode: str, event: EventInfo) -> dict[str, Any]:
    """Return the AsyncAPI message of ``event`` on a channel of ``kind`` in content ``mode``."""
    name = event.event_type or "any other event type"
    found: dict[str, Any] = {"name": event.key, "title": name}
    if kind == "redis":
        found["payload"] = _stream_entry(event)
    elif mode == "binary":
        found["headers"] = _headers(kind, _binary_headers(kind, event))
        found["payload"] = event.schema
        found["contentType"] = "application/json"
    else:
        content_type = BATCH_CONTENT_TYPE if mode == "batched" else STRUCTURED_CONTENT_TYPE
        found["headers"] = _headers(kind, _structured_headers(kind, content_type))
        envelope = envelope_schema(event)
        found["payload"] = {"type": "array", "items": envelope} if mode == "batched" else envelope
        found["contentType"] = content_type
    if kind == "kafka":
        key = {**_TEXT, "description": "the partitionkey extension; no key without one"}
        found["bindings"] = {"kafka": {"key": key, "bindingVersion": "0.5.0"}}
    if not event.typed:
        found["summary"] = "Untyped: the data may be any JSON value."
    if event.dead_letter:
        found["summary"] = "A dead letter: the event as it was, and why it failed."
    found["examples"] = [_example(kind, mode, event)]
    return found


def envelope_schema(event: EventInfo) -> dict[str, Any]:
    """Return the schema of ``event`` in the CloudEvents JSON format (structured mode)."""
    properties = {**_attribute_schemas(event), "datacontenttype": _TEXT, "data": event.schema}
    if event.event_type is not None:
        properties["type"] = {"const": event.event_type}
    return {"type": "object", "properties": properties, "required": _required(event)}


def _attribute_schemas(event: EventInfo) -> dict[str, dict[str, Any]]:
    return {**ATTRIBUTES, **DEAD_LETTER_ATTRIBUTES} if event.dead_letter else ATTRIBUTES


def _required(event: EventInfo) -> list[str]:
    return [*REQUIRED, *(DEAD_LETTER_ATTRIBUTES if event.dead_letter else ())]


def _binary_headers(kind: str, event: EventInfo) -> dict[str, Any]:
    prefix = PREFIXES[kind]
    headers = {prefix + name: schema for name, schema in _attribute_schemas(event).items()}
    if event.event_type is not None:
        headers[prefix + "type"] = {"const": event.event_type}
    if kind != "amqp":  # AMQP's content type is a property of the message, not a header
        headers["content-type"] = {**_TEXT, "description": "the event's datacontenttype"}
    return headers


def _structured_headers(kind: str, content_type: str) -> dict[str, Any]:
    if kind == "amqp":  # so that a consistent-hash exchange can read the key
        return {"cloudEvents_partitionkey": ATTRIBUTES["partitionkey"]}
    return {"content-type": {"const": content_type}}


def _headers(kind: str, headers: dict[str, Any]) -> dict[str, Any]:
    if kind == "http":
        headers = {**headers, **WEBHOOK_HEADERS}
    required = [name for name in headers if name.startswith("webhook-")]
    if kind in PREFIXES and f"{PREFIXES[kind]}id" in headers:
        named = (PREFIXES[kind] + name for name in (*REQUIRED, *DEAD_LETTER_ATTRIBUTES))
        required += [name for name in named if name in headers]
    schema: dict[str, Any] = {"type": "object", "properties": headers}
    return {**schema, "required": required} if required else schema


def _stream_entry(event: EventInfo) -> dict[str, Any]:
    cloud_event = {
        **_TEXT,
        "contentMediaType": "application/cloudevents+json",
        "description": "the event in the CloudEvents JSON format",
    }
    fields = {
        "cloud_event": cloud_event,
        "event_id": ATTRIBUTES["id"],
        "event_type": {"const": event.event_type} if event.event_type else _TEXT,
        "source": ATTRIBUTES["source"],
        "timestamp": _TIME,
    }
    return {"type": "object", "properties": fields, "required": list(fields)}


def _attributes(event: EventInfo) -> dict[str, Any]:
    found: dict[str, Any] = {
        "specversion": "1.0",
        "id": EXAMPLE_ID,
        "source": event.source,
        "type": event.event_type or "example.happened",
        "time": EXAMPLE_TIME,
    }
    if event.dead_letter:
        found |= {REASON: "retriesexhausted", DESTINATION: "orders", ATTEMPTS: 6}
        found[ERROR] = "EventRejected: the broker refused the event"
    return found


def _example(kind: str, mode: str, event: EventInfo) -> dict[str, Any]:
    attributes = _attributes(event)
    envelope = {**attributes, "datacontenttype": "application/json"}
    if event.example is not None:
        envelope["data"] = event.example
    if kind == "redis":
        entry = {"cloud_event": json.dumps(envelope), "event_id": EXAMPLE_ID}
        entry |= {"event_type": attributes["type"], "source": event.source}
        return {"name": "entry", "payload": {**entry, "timestamp": EXAMPLE_TIME}}
    if mode == "binary":
        headers = {PREFIXES[kind] + name: value for name, value in attributes.items()}
        if kind != "amqp":
            headers["content-type"] = "application/json"
        found: dict[str, Any] = {"name": "binary", "headers": _signed(kind, headers)}
        return found | ({} if event.example is None else {"payload": event.example})
    content_type = BATCH_CONTENT_TYPE if mode == "batched" else STRUCTURED_CONTENT_TYPE
    headers = {} if kind == "amqp" else {"content-type": content_type}
    payload = [envelope] if mode == "batched" else envelope
    return {"name": mode, "headers": _signed(kind, headers), "payload": payload}


def _signed(kind: str, headers: dict[str, Any]) -> dict[str, Any]:
    if kind != "http":
        return headers
    signed = {"webhook-id": EXAMPLE_ID, "webhook-timestamp": "1767268800"}
    return {**headers, **signed, "webhook-signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN="}
