"""Build Kafka messages from CloudEvents, following the CloudEvents Kafka protocol binding 1.0.

Both producers (kafka-python and confluent-kafka) send what these functions return. They write
the binding directly rather than through the cloudevents SDK's Kafka binding, which is slower
(docs/performance.md) and departs from the spec in SDK 2.2.0:

* structured mode: the SDK's ``content-type`` is ``application/cloudevents+json``; the binding
  asks for ``application/cloudevents+json; charset=UTF-8``.
* binary mode: the SDK writes only dicts as JSON; a list, string, number or boolean comes out as
  Python text (``[1, 'a']``, ``hello``, ``True``), so JSON data is encoded here. An event without
  data gets an empty value where the binding wants none. Boolean extensions come out as
  ``True``/``False`` where CloudEvents' canonical strings are ``true``/``false``.

The message key is the ``partitionkey`` extension when the event has one (the binding's opt-in
key mapper), and ``partitionkey`` stays in the event: a ``ce_partitionkey`` header in binary mode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ...events import CloudEvent
from ...formats import STRUCTURED_CONTENT_TYPE, to_structured_json
from ..binary import attribute_text, binary_data, require_id

_STRUCTURED_HEADERS: Final = (("content-type", STRUCTURED_CONTENT_TYPE.encode()),)
#: The binary mode's header for each attribute not named ``ce_<attribute>``.
_HEADER_NAMES: Final = {"datacontenttype": "content-type"}


@dataclass(frozen=True)
class KafkaMessage:
    """A message ready for a producer: key, value, ``(str, bytes)`` headers, and its topic
    (``""``: the backend's fixed ``topic``)."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    topic: str = ""


def binary_message(event: CloudEvent) -> KafkaMessage:
    """Return ``event`` in binary content mode.

    The value is the data (JSON text for JSON data), ``content-type`` is ``datacontenttype`` and
    every other attribute and extension is a ``ce_<name>`` header. Raises ``InvalidEvent`` if the
    event has no id or its JSON data cannot be encoded.
    """
    require_id(event)
    headers = [
        (_HEADER_NAMES.get(name) or f"ce_{name}", attribute_text(value).encode())
        for name, value in event.attributes().items()
    ]
    key, value = _key(event), binary_data(event)
    if value is None and key is None:
        value = b""  # kafka-python refuses a message with neither key nor value
    return KafkaMessage(key=key, value=value, headers=headers)


def structured_message(event: CloudEvent) -> KafkaMessage:
    """Return ``event`` in structured content mode, as CloudEvents JSON.

    Raises ``InvalidEvent`` if the event has no id.
    """
    require_id(event)
    value = to_structured_json(event)
    return KafkaMessage(key=_key(event), value=value, headers=list(_STRUCTURED_HEADERS))


#: How each content mode turns an event into a message.
MESSAGE_BUILDERS: Final[dict[str, Callable[[CloudEvent], KafkaMessage]]] = {
    "binary": binary_message,
    "structured": structured_message,
}


def _key(event: CloudEvent) -> bytes | None:
    key = event.partition_key
    return None if key is None else key.encode()
