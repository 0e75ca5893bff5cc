"""Decoding what the backends write, and refusing what is not a usable CloudEvent."""

from __future__ import annotations

import json
from typing import Any

import pytest

from django_broadcaster.backends.kafka import binary_message, structured_message
from django_broadcaster.backends.redis import stream_fields
from django_broadcaster.consumers.decoding import (
    UndecodableMessage,
    decode_kafka_record,
    decode_stream_entry,
    decode_structured,
)
from django_broadcaster.events import CloudEvent
from django_broadcaster.formats import to_structured_json
from tests.factories import published_event

EVENTS = [
    {},
    {"subject": "order/42", "dataschema": "https://example.com/order.json"},
    {"extensions": {"partitionkey": "customer-7", "tenant": "acme", "attempt": 3, "vip": True}},
    {"data": ["a", 1, None]},
    {"data": "plain string"},
    {"data": 7.25},
    {"data": None, "subject": "no-data"},
    {"data": None, "extensions": {"partitionkey": "customer-9"}},
]


def as_stream_entry(event: CloudEvent) -> dict[bytes, bytes]:
    """Return the entry as redis-py reads it back: bytes keys and values."""
    return {
        str(key).encode(): value if isinstance(value, bytes) else str(value).encode()
        for key, value in stream_fields(event).items()
    }


def as_text(value: Any) -> str:
    """Return an extension value as Kafka binary mode carries it (a header has no type)."""
    return {True: "true", False: "false"}.get(value, str(value)) if value is not None else ""


@pytest.mark.parametrize("overrides", EVENTS)
def test_a_stream_entry_decodes_to_the_published_event(overrides: dict[str, Any]) -> None:
    event = published_event(**overrides)
    assert decode_stream_entry(as_stream_entry(event)) == event


@pytest.mark.parametrize("overrides", EVENTS)
def test_a_structured_kafka_message_decodes_to_the_published_event(
    overrides: dict[str, Any],
) -> None:
    event = published_event(**overrides)
    message = structured_message(event)
    assert decode_kafka_record(message.headers, message.key, message.value) == event


@pytest.mark.parametrize("overrides", EVENTS)
def test_a_binary_kafka_message_decodes_with_extensions_as_strings(
    overrides: dict[str, Any],
) -> None:
    event = published_event(**overrides)
    message = binary_message(event)
    decoded = decode_kafka_record(message.headers, message.key, message.value)
    assert (decoded.id, decoded.source, decoded.event_type) == (event.id, event.source, event.type)
    assert (decoded.time, decoded.subject, decoded.data) == (event.time, event.subject, event.data)
    assert decoded.dataschema == event.dataschema
    assert dict(decoded.extensions) == {k: as_text(v) for k, v in event.extensions.items()}


def test_content_type_not_ce_headers_decides_the_kafka_mode() -> None:
    event = published_event()
    message = structured_message(event)
    headers = [*message.headers, ("ce_id", b"from-a-header")]
    assert decode_kafka_record(headers, None, message.value).id == event.id


def test_a_text_key_becomes_the_partition_key_unless_the_event_has_one() -> None:
    message = binary_message(published_event())
    assert decode_kafka_record(message.headers, b"k-1", message.value).partition_key == "k-1"
    assert decode_kafka_record(message.headers, b"\xff\xfe", message.value).partition_key is None
    keyed = binary_message(published_event(extensions={"partitionkey": "own"}))
    assert decode_kafka_record(keyed.headers, b"other", keyed.value).partition_key == "own"


@pytest.mark.parametrize("key", [b"", b"k\x00", b"\x01", b"\x7f", b"\xc2\x85"])
@pytest.mark.parametrize("build", [binary_message, structured_message])
def test_a_key_that_cannot_be_a_partition_key_is_left_out(build: Any, key: bytes) -> None:
    event = published_event()
    message = build(event)
    decoded = decode_kafka_record(message.headers, key, message.value)
    assert decoded.partition_key is None and decoded.id == event.id


def structured(**changes: Any) -> bytes:
    document = json.loads(to_structured_json(published_event()))
    document.update(changes)
    return json.dumps({k: v for k, v in document.items() if v is not None}).encode()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (b"{not json", "not CloudEvents JSON"),
        (b"[1, 2]", "not CloudEvents JSON"),
        (b"\xff", "not CloudEvents JSON"),
        (structured(id=None), "no id"),  # the SDK would make one up, and defeat the inbox
        (structured(id=""), "no id"),
        (structured(source=None, type=None), "no source, type"),
        (structured(specversion="0.3"), "specversion must be 1.0"),
        (structured(source="not a uri"), "source must be a URI-reference"),
        (structured(time="yesterday"), "not CloudEvents JSON"),
        (structured(data=float("nan")), "NaN"),  # json.dumps writes NaN; JSON has no such value
        (structured(data=[float("inf")]), "Infinity"),
        (structured(data={"a": -float("inf")}), "-Infinity"),
        (structured(data="x").replace(b'"x"', b"1e400"), "too large"),
        (structured(data="x", data_base64="eA=="), "both data and data_base64"),
    ],
)
def test_an_unusable_event_is_undecodable(value: bytes, problem: str) -> None:
    with pytest.raises(UndecodableMessage, match=problem):
        decode_structured(value)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (b"{not json", "not a CloudEvents Kafka message: JSONDecodeError"),
        (b"NaN", "NaN"),
        (b'{"total": Infinity}', "Infinity"),
        (b"[1e999]", "too large"),
        (b"\xff", "UnicodeDecodeError"),
    ],
)
@pytest.mark.parametrize("content_type", ["application/json", "text/json", "application/x+json"])
def test_binary_kafka_data_labelled_json_must_be_json(
    value: bytes, problem: str, content_type: str
) -> None:
    message = binary_message(published_event(datacontenttype=content_type))
    headers = [(n, v) for n, v in message.headers if n != "content-type"]
    with pytest.raises(UndecodableMessage, match=problem):
        decode_kafka_record([*headers, ("content-type", content_type.encode())], None, value)


def test_binary_kafka_data_of_another_type_is_text_or_bytes() -> None:
    message = binary_message(published_event(datacontenttype="text/plain", data="x"))
    assert decode_kafka_record(message.headers, None, b"{not json").data == "{not json"
    assert decode_kafka_record(message.headers, None, b"\xff").data == b"\xff"


def test_a_stream_entry_without_the_event_field_is_undecodable() -> None:
    with pytest.raises(UndecodableMessage, match="no cloud_event field"):
        decode_stream_entry({b"event_id": b"1"})


def test_a_binary_kafka_message_without_an_id_is_undecodable() -> None:
    message = binary_message(published_event())
    headers = [(name, value) for name, value in message.headers if name != "ce_id"]
    with pytest.raises(UndecodableMessage, match="no id"):
        decode_kafka_record(headers, None, message.value)


def test_a_kafka_message_without_headers_is_undecodable() -> None:
    with pytest.raises(UndecodableMessage):
        decode_kafka_record([], None, b'{"a": 1}')


def test_a_dead_letter_gives_back_its_event_or_the_message_it_kept() -> None:
    from django_broadcaster.consumers.decoding import decode_dead_letter
    from django_broadcaster.consumers.inbox import InboxEntry

    event = published_event()
    structured_json = to_structured_json(event).decode()
    letter = InboxEntry(source="s", event_type=event.event_type, payload=structured_json)
    assert decode_dead_letter(letter) == event
    entry = {"cloud_event": structured_json, "event_id": str(event.id)}
    assert decode_dead_letter(InboxEntry(source="redis:s", payload=json.dumps(entry))) == event
    entry["cloud_event"] = structured_json.replace(str(event.id), "\ufffd")
    with pytest.raises(UndecodableMessage, match="not kept whole"):
        decode_dead_letter(InboxEntry(source="redis:s", payload=json.dumps(entry)))
    with pytest.raises(UndecodableMessage):
        decode_dead_letter(InboxEntry(source="redis:s", error="trimmed"))


def test_data_of_a_type_that_is_not_json_means_the_same_text_on_every_transport() -> None:
    # A row written before publishing refused such data, as the worker reads it back.
    columns = {"event_type": "order.note", "source": "shop", "id": "e-1"}
    row = CloudEvent.trusted('{"a":[1,"\\u00fc"]}', datacontenttype="text/plain", **columns)
    binary, structured_kafka = binary_message(row), structured_message(row)
    received = [
        decode_stream_entry(as_stream_entry(row)).data,
        decode_kafka_record(binary.headers, binary.key, binary.value).data,
        decode_kafka_record(structured_kafka.headers, None, structured_kafka.value).data,
    ]
    assert received == ['{"a":[1,"\u00fc"]}'] * 3
    # What 0.2.0 wrote to a stream: the value itself, as if the type declared JSON.
    document = json.loads(
        to_structured_json(published_event(datacontenttype="text/plain", data=""))
    )
    document["data"] = {"a": [1, "\u00fc"]}
    assert decode_structured(json.dumps(document)).data == received[0]
