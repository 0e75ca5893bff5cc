"""Build AMQP messages from CloudEvents, following the CloudEvents AMQP protocol binding 1.0.

The binding is written for AMQP 1.0; on RabbitMQ's AMQP 0-9-1 the application properties it
speaks of are the message's ``headers`` table, and its ``content-type`` property is the
``content_type`` property. Binary mode (the default) carries each attribute as a header named
``cloudEvents_<attribute>``: the binding allows ``cloudEvents:`` too, and prefers the underscore,
which JMS and most header-matching tools accept. Values are the attributes' canonical strings
(the binding allows native AMQP types; strings read the same everywhere). ``datacontenttype``
is the ``content_type`` property and the data is the body. Structured mode sends the event as
CloudEvents JSON with ``content_type`` ``application/cloudevents+json; charset=UTF-8``.

Either way a ``partitionkey`` extension is also the header ``cloudEvents_partitionkey``, so that a
consistent-hash exchange (``hash-header``) can keep an entity's events on one queue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ...events import CloudEvent
from ...formats import STRUCTURED_CONTENT_TYPE, to_structured_json
from ..binary import attribute_text, binary_data, require_id

#: The prefix of the headers that carry attributes in binary mode.
PREFIX: Final = "cloudEvents_"
PARTITION_KEY_HEADER: Final = f"{PREFIX}partitionkey"


@dataclass(frozen=True)
class AmqpMessage:
    """A message ready to publish: body, ``content_type`` property and ``headers`` table."""

    body: bytes
    content_type: str | None
    headers: dict[str, str]


def binary_message(event: CloudEvent) -> AmqpMessage:
    """Return ``event`` in binary content mode (see the module docstring).

    Raises ``InvalidEvent`` if the event has no id or its JSON data cannot be encoded.
    """
    require_id(event)
    attributes = event.attributes()
    content_type = attributes.pop("datacontenttype", None)
    headers = {PREFIX + name: attribute_text(value) for name, value in attributes.items()}
    return AmqpMessage(binary_data(event) or b"", content_type, headers)


def structured_message(event: CloudEvent) -> AmqpMessage:
    """Return ``event`` in structured content mode, as CloudEvents JSON.

    Raises ``InvalidEvent`` if the event has no id.
    """
    require_id(event)
    key = event.partition_key
    headers = {} if key is None else {PARTITION_KEY_HEADER: key}
    return AmqpMessage(to_structured_json(event), STRUCTURED_CONTENT_TYPE, headers)


#: How each content mode turns an event into a message.
MESSAGE_BUILDERS: Final[dict[str, Callable[[CloudEvent], AmqpMessage]]] = {
    "binary": binary_message,
    "structured": structured_message,
}
