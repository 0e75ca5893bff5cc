"""Messages from the brokers back into :class:`~django_broadcaster.events.CloudEvent` values.

Structured JSON is read by :func:`~django_broadcaster.formats.read_structured_json`, binary
Kafka and AMQP messages by the cloudevents SDK's bindings with the strict
:data:`~django_broadcaster.formats.JSON_FORMAT`; either way the attributes go straight into this
package's own ``CloudEvent``, which validates them: the SDK's v1 event would make up an ``id``
and a ``time`` for a message that has none, and a made-up id defeats the inbox.

Any failure to decode raises :class:`UndecodableMessage`: decoding is deterministic, so such a
message is a dead letter at once, never retried. :func:`decode_dead_letter` reads the event back
from a dead letter, to replay it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

from cloudevents.core.bindings import amqp as amqp_binding
from cloudevents.core.bindings import http as http_binding
from cloudevents.core.bindings import kafka as kafka_binding

from ..events import (
    CORE_ATTRIBUTES,
    DEFAULT_DATACONTENTTYPE,
    SPECVERSION,
    CloudEvent,
    require_string,
)
from ..exceptions import BroadcasterError, InvalidEvent
from ..formats import JSON_FORMAT, parse_json, read_structured_document, read_structured_json

if TYPE_CHECKING:
    from .inbox import InboxEntry

#: The stream field that holds the event, in the CloudEvents JSON format (see backends.redis).
STREAM_FIELD: Final = b"cloud_event"
STRUCTURED_PREFIX: Final = "application/cloudevents"
BATCH_PREFIX: Final = "application/cloudevents-batch"
_OPTIONAL = ("subject", "time", "dataschema")


class UndecodableMessage(BroadcasterError, ValueError):
    """A message is not a CloudEvent this package can read; the message says why."""


def cloud_event_from_attributes(attributes: Mapping[str, Any], data: Any) -> CloudEvent:
    """Return the CloudEvent with these parsed attributes and ``data``.

    Raises :class:`UndecodableMessage` when ``specversion`` is not 1.0 or a required attribute
    is missing, and :class:`~django_broadcaster.exceptions.InvalidEvent` when one breaks the spec.
    """
    if attributes.get("specversion") != SPECVERSION:
        raise UndecodableMessage(f"specversion must be 1.0, got {attributes.get('specversion')!r}")
    missing = [name for name in ("id", "source", "type") if not attributes.get(name)]
    if missing:
        raise UndecodableMessage(f"the event has no {', '.join(missing)}")
    extensions = {name: value for name, value in attributes.items() if name not in CORE_ATTRIBUTES}
    return CloudEvent(
        event_type=attributes["type"],
        source=attributes["source"],
        id=attributes["id"],
        data=data,
        datacontenttype=attributes.get("datacontenttype") or DEFAULT_DATACONTENTTYPE,
        extensions=extensions,
        **{name: attributes.get(name) for name in _OPTIONAL},
    )


def decode_structured(value: bytes | str) -> CloudEvent:
    """Return the event in ``value``, CloudEvents JSON; raise :class:`UndecodableMessage`."""
    with _decoding("CloudEvents JSON"):
        return cloud_event_from_attributes(*read_structured_json(value))


def decode_stream_entry(fields: Mapping[bytes, bytes]) -> CloudEvent:
    """Return the event in a Redis stream entry's ``cloud_event`` field.

    Raises :class:`UndecodableMessage` when the field is missing or not a valid event.
    """
    if STREAM_FIELD not in fields:
        raise UndecodableMessage("the stream entry has no cloud_event field")
    return decode_structured(fields[STREAM_FIELD])


def decode_kafka_record(
    headers: Sequence[tuple[str, bytes | None]], key: bytes | None, value: bytes | None
) -> CloudEvent:
    """Return the event in a Kafka message, in binary or structured content mode.

    The mode follows the CloudEvents Kafka binding: structured exactly when ``content-type``
    starts with ``application/cloudevents`` (the SDK's ``from_kafka`` looks for ``ce_``
    headers instead). A UTF-8 key becomes the ``partitionkey`` extension unless the event has
    one. Raises :class:`UndecodableMessage`.
    """
    header_map = {name.lower(): header or b"" for name, header in headers}
    message = kafka_binding.KafkaMessage(headers=header_map, key=None, value=value or b"")
    content_type = header_map.get("content-type", b"").decode("utf-8", "replace")
    with _decoding("a CloudEvents Kafka message"):
        if content_type.lower().startswith(STRUCTURED_PREFIX):
            return _with_key(decode_structured(message.value), key)
        event = kafka_binding.from_binary(message, JSON_FORMAT, _FACTORY)
        return _with_key(_ours(event), key)


def decode_http_request(headers: Mapping[str, str], body: bytes) -> list[CloudEvent]:
    """Return the events of an HTTP request, in binary, structured or batched content mode.

    The mode follows ``Content-Type`` (header names in any case), as the CloudEvents HTTP
    binding says: a batch is a JSON array of structured events, in order. Raises
    :class:`UndecodableMessage`.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    content_type = lowered.get("content-type", "").lower()
    if content_type.startswith(BATCH_PREFIX):
        with _decoding("a CloudEvents JSON batch"):
            documents = parse_json(body)
            if not isinstance(documents, list):
                raise ValueError(f"the batch is {type(documents).__name__}, not an array")
            return [cloud_event_from_attributes(*read_structured_document(d)) for d in documents]
    if content_type.startswith(STRUCTURED_PREFIX):
        return [decode_structured(body)]
    message = http_binding.HTTPMessage(headers=lowered, body=body)
    with _decoding("a CloudEvents HTTP request"):
        return [_ours(http_binding.from_binary(message, JSON_FORMAT, _FACTORY))]


def decode_amqp_message(
    content_type: str | None, headers: Mapping[str, Any] | None, body: bytes
) -> CloudEvent:
    """Return the event in an AMQP message (RabbitMQ), in binary or structured content mode.

    Structured exactly when ``content_type`` starts with ``application/cloudevents``; in binary
    mode the attributes are the ``cloudEvents_`` or ``cloudEvents:`` headers (the AMQP binding's
    two prefixes) and ``content_type`` is ``datacontenttype``. Raises
    :class:`UndecodableMessage`.
    """
    with _decoding("a CloudEvents AMQP message"):
        if (content_type or "").lower().startswith(STRUCTURED_PREFIX):
            return decode_structured(body)
        properties = {} if content_type is None else {"content-type": content_type}
        message = amqp_binding.AMQPMessage(properties, dict(headers or {}), body)
        return _ours(amqp_binding.from_binary(message, JSON_FORMAT, _FACTORY))


def decode_dead_letter(entry: InboxEntry) -> CloudEvent:
    """Return the event that the dead letter ``entry`` keeps, to replay it.

    An entry with an ``event_type`` keeps the event as CloudEvents JSON. One without keeps the
    message as it was read (a Redis entry's fields; a Kafka message's key, headers and value; an
    AMQP message's content type, headers and body), and
    it is decoded again: a consumer of an earlier version may have refused a message that reads
    now. Raises :class:`UndecodableMessage` when it still does not, or when the message was not
    kept whole (it held bytes that are not UTF-8, stored as U+FFFD).
    """
    if entry.event_type:
        return decode_structured(entry.payload)
    with _decoding("a message kept by a consumer"):
        kept = json.loads(entry.payload)
        if entry.source.startswith("kafka:"):
            return _kept_kafka_message(kept)
        if entry.source.startswith("rabbitmq:"):
            return decode_amqp_message(kept["content_type"], kept["headers"], _whole(kept["body"]))
        return decode_stream_entry({name.encode(): _whole(text) for name, text in kept.items()})


#: The SDK types an event factory as returning its own event class, but any callable taking
#: ``(attributes, data)`` works: the format and the binding return what it returns.
_FACTORY: Any = cloud_event_from_attributes


def _ours(event: object) -> CloudEvent:
    assert isinstance(event, CloudEvent), f"the SDK returned {type(event).__name__}"
    return event


def _with_key(event: CloudEvent, key: bytes | None) -> CloudEvent:
    if key is None or "partitionkey" in event.extensions:
        return event
    try:
        partition_key = key.decode()
        require_string("partitionkey", partition_key)
    except (UnicodeDecodeError, InvalidEvent):
        # Empty, not text, or with control characters: a valid Kafka key, but not a valid
        # attribute. The producer's business, which must not cost the event.
        return event
    return replace(event, extensions={**event.extensions, "partitionkey": partition_key})


def _kept_kafka_message(kept: dict[str, Any]) -> CloudEvent:
    key = kept["key"]
    key = None if key is None or "\ufffd" in key else key.encode()  # such a key was no text
    headers = [(name, _whole(value)) for name, value in kept["headers"]]
    return decode_kafka_record(headers, key, _whole(kept["value"]))


def _whole(text: str | None) -> Any:
    """Return ``text`` as the bytes it was read from; refuse it if they were not all UTF-8."""
    if text is not None and "\ufffd" in text:
        raise UndecodableMessage("the message was not kept whole: it held bytes that are not UTF-8")
    return None if text is None else text.encode()


@contextmanager
def _decoding(what: str) -> Iterator[None]:
    """Turn any failure inside into :class:`UndecodableMessage` naming ``what`` was expected.

    Broad on purpose: the JSON parser and the SDK raise ``ValueError``, ``TypeError``,
    ``AttributeError`` (JSON that is not an object) and their own errors, and for a consumer
    they all mean the same thing: this message cannot be read.
    """
    try:
        yield
    except UndecodableMessage:
        raise
    except Exception as exc:
        raise UndecodableMessage(f"not {what}: {type(exc).__name__}: {exc}") from exc
