"""Build HTTP requests from CloudEvents, following the CloudEvents HTTP protocol binding 1.0.

* binary mode: the data is the body, ``Content-Type`` is ``datacontenttype`` and every other
  attribute and extension is a ``ce-<name>`` header, its value percent-encoded where the binding
  says (outside printable ASCII, and space, ``"`` and ``%``);
* structured mode: the event in the CloudEvents JSON format is the body;
* batched mode: a JSON array of such events is the body, many events per request.

Each request has the Standard Webhooks message id it is signed under: the event's id, or for a
batch ``batch-`` and a digest of its events' ids, so that sending the same events again sends
the same id, as the specification asks of a retry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from ...events import CloudEvent
from ...formats import STRUCTURED_CONTENT_TYPE, to_structured_json
from ..binary import attribute_text, binary_data, require_id

BATCH_CONTENT_TYPE: Final = "application/cloudevents-batch+json; charset=UTF-8"
MODES: Final = ("binary", "structured", "batched")
#: Printable ASCII but space, ``"`` and ``%``: what a ``ce-`` header carries as it is.
_SAFE: Final = "".join(chr(code) for code in range(0x21, 0x7F) if chr(code) not in ' "%')


@dataclass(frozen=True)
class WebhookRequest:
    """One POST to send: its message id, content headers, body, and the events it carries."""

    message_id: str
    headers: dict[str, str]
    body: bytes
    events: tuple[CloudEvent, ...]


def binary_request(event: CloudEvent) -> WebhookRequest:
    """Return ``event`` in binary content mode. Raises ``InvalidEvent`` (no id, bad JSON data)."""
    event_id = _require_id(event)
    headers = {
        "content-type" if name == "datacontenttype" else f"ce-{name}": _header_value(name, value)
        for name, value in event.attributes().items()
    }
    return WebhookRequest(event_id, headers, binary_data(event) or b"", (event,))


def structured_request(event: CloudEvent) -> WebhookRequest:
    """Return ``event`` in structured content mode. Raises ``InvalidEvent`` if it has no id."""
    event_id = _require_id(event)
    headers = {"content-type": STRUCTURED_CONTENT_TYPE}
    return WebhookRequest(event_id, headers, to_structured_json(event), (event,))


def batched_request(events: Sequence[CloudEvent]) -> WebhookRequest:
    """Return ``events`` (at least one) in batched content mode, as one request.

    Raises ``InvalidEvent`` if one has no id.
    """
    ids = [_require_id(event) for event in events]
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32]
    body = b"[" + b",".join(to_structured_json(event) for event in events) + b"]"
    return WebhookRequest(
        f"batch-{digest}", {"content-type": BATCH_CONTENT_TYPE}, body, tuple(events)
    )


#: How the single-event modes turn an event into a request.
SINGLE_BUILDERS: Final[dict[str, Callable[[CloudEvent], WebhookRequest]]] = {
    "binary": binary_request,
    "structured": structured_request,
}


def _header_value(name: str, value: object) -> str:
    text = attribute_text(value)
    return text if name == "datacontenttype" else quote(text, safe=_SAFE)


def _require_id(event: CloudEvent) -> str:
    require_id(event)
    return str(event.id)
