"""AMQP messages back into events: both binding prefixes, both modes, and what cannot be read."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from django_broadcaster.backends.rabbitmq.messages import binary_message, structured_message
from django_broadcaster.consumers.decoding import (
    UndecodableMessage,
    decode_amqp_message,
    decode_dead_letter,
)
from django_broadcaster.consumers.inbox import InboxEntry
from django_broadcaster.consumers.rabbitmq import _kept
from tests.factories import published_event


@pytest.mark.parametrize("build", [binary_message, structured_message])
def test_what_the_backend_sends_reads_back_as_the_same_event(build: object) -> None:
    event = published_event(extensions={"partitionkey": "customer-7", "tenant": "acme"})
    message = build(event)  # type: ignore[operator]

    assert decode_amqp_message(message.content_type, message.headers, message.body) == event


def test_the_colon_prefix_of_the_binding_is_read_too() -> None:
    headers = {
        "cloudEvents:specversion": "1.0",
        "cloudEvents:id": "e-1",
        "cloudEvents:source": "/elsewhere",
        "cloudEvents:type": "com.example.made",
    }

    event = decode_amqp_message("application/json", headers, b'{"n":1}')

    assert (event.id, event.source, event.data) == ("e-1", "/elsewhere", {"n": 1})


@pytest.mark.parametrize(
    ("content_type", "headers", "body"),
    [
        (None, {}, b"not an event"),
        ("application/json", {"cloudEvents_specversion": "1.0", "cloudEvents_id": "x"}, b"{}"),
        ("application/cloudevents+json", {}, b"{not json"),
        ("application/json", {"cloudEvents_specversion": "1.0", "cloudEvents_id": "1",
                              "cloudEvents_source": "/s", "cloudEvents_type": "t"}, b"{bad"),
    ],
)  # fmt: skip
def test_a_message_that_is_no_event_is_undecodable(
    content_type: str | None, headers: dict[str, str], body: bytes
) -> None:
    with pytest.raises(UndecodableMessage):
        decode_amqp_message(content_type, headers, body)


def test_a_kept_message_is_decoded_again_from_its_dead_letter() -> None:
    event = published_event()
    message = binary_message(event)
    properties = SimpleNamespace(content_type=message.content_type, headers=message.headers)
    kept = _kept(properties, message.body)

    letter = InboxEntry(source="rabbitmq:orders", payload=kept)

    assert decode_dead_letter(letter) == event
    assert json.loads(kept)["content_type"] == "application/json"
