"""Both Kafka backends against a real Kafka-protocol broker: every message decoded by the SDK.

Each test that takes the ``backend`` fixture runs once per producer: ``KafkaBackend``
(kafka-python) and ``ConfluentKafkaBackend`` (confluent-kafka), since both must send the same
messages. Each test uses its own topic and reads it from the earliest offset (the dev broker's
end offsets are unreliable). The ``test_rule_*`` tests check the raw messages against the
CloudEvents Kafka binding where cloudevents 2.2.0's binding gets it wrong or where a regression
would be silent. What only concerns confluent-kafka is in ``test_confluent_kafka_backend.py``.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary, from_kafka, from_structured
from cloudevents.core.formats.json import JSONFormat
from kafka import KafkaConsumer
from kafka.errors import MessageSizeTooLargeError
from kafka.partitioner import murmur2

from django_broadcaster.backends import KafkaBackend
from django_broadcaster.backends.kafka import BaseKafkaBackend, ConfluentKafkaBackend
from django_broadcaster.events import CloudEvent
from django_broadcaster.exceptions import EventRejected
from tests.ci import missing
from tests.factories import published_event

STRUCTURED_CONTENT_TYPE = b"application/cloudevents+json; charset=UTF-8"


EVENTS = [
    {},
    {"subject": "order/42"},
    {"extensions": {"partitionkey": "customer-7", "tenant": "acme", "attempt": 3, "vip": True}},
    {"data": ["a", 1, None], "extensions": {"partitionkey": "customer-8"}},
    {"data": "plain string"},
    {"data": 7.25},
    {"data": None, "subject": "no-data"},
    {"data": None, "extensions": {"partitionkey": "customer-9"}},
]


@pytest.fixture(params=["binary", "structured"])
def content_mode(request: pytest.FixtureRequest) -> str:
    mode: str = request.param
    return mode


def require_confluent_kafka() -> None:
    """Skip the test when confluent-kafka is missing (fail under CI=true)."""
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        missing("confluent-kafka is not installed (pip install -e '.[test]')")


@pytest.fixture(params=["kafka-python", "confluent-kafka"])
def backend_class(request: pytest.FixtureRequest) -> type[BaseKafkaBackend]:
    """Return each Kafka backend class in turn."""
    if request.param == "confluent-kafka":
        require_confluent_kafka()
        return ConfluentKafkaBackend
    return KafkaBackend


@pytest.fixture
def backend(
    kafka_bootstrap_servers: str,
    unique_name: str,
    content_mode: str,
    backend_class: type[BaseKafkaBackend],
) -> Iterator[BaseKafkaBackend]:
    """Yield an open backend producing to the topic ``unique_name``."""
    with backend_class(
        "kafka",
        bootstrap_servers=kafka_bootstrap_servers,
        topic=unique_name,
        content_mode=content_mode,
    ) as opened:
        assert isinstance(opened, backend_class)
        yield opened


def consume(bootstrap_servers: str, topic: str, count: int, timeout_s: float = 30) -> list[Any]:
    """Return the first ``count`` records of ``topic``, ordered by event id as sent."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        enable_auto_commit=False,
    )
    records: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(records) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
    finally:
        consumer.close()
    assert len(records) == count, f"expected {count} records on {topic}, got {len(records)}"
    return records


def by_id(records: list[Any]) -> dict[str, Any]:
    """Index records by the event id they carry (header in binary mode, JSON in structured)."""
    return {decode(record).get_id(): record for record in records}


def message(record: Any) -> KafkaMessage:
    return KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)


def decode(record: Any) -> BaseCloudEvent:
    return from_kafka(message(record), JSONFormat())


def assert_same_event(decoded: BaseCloudEvent, event: CloudEvent, content_mode: str) -> None:
    assert decoded.get_id() == event.id
    assert decoded.get_type() == event.event_type
    assert decoded.get_source() == event.source
    assert decoded.get_time() == event.time
    assert decoded.get_subject() == event.subject
    assert decoded.get_datacontenttype() == "application/json"
    assert decoded.get_data() == event.data
    for name, value in event.extensions.items():
        # Binary mode carries every extension as a header string, in CloudEvents' canonical form.
        expected = value if content_mode == "structured" else canonical_string(value)
        assert decoded.get_extension(name) == expected, name


def canonical_string(value: str | int | bool) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


@pytest.mark.kafka
def test_send_batch_delivers_every_event_decodable_by_the_sdk(
    backend: BaseKafkaBackend, kafka_bootstrap_servers: str, unique_name: str, content_mode: str
) -> None:
    events = [published_event(**overrides) for overrides in EVENTS]

    assert backend.send_batch(events) == {}

    records = by_id(consume(kafka_bootstrap_servers, unique_name, len(events)))
    for event in events:
        record = records[event.id]
        assert record.key == (event.partition_key.encode() if event.partition_key else None)
        strict = from_binary if content_mode == "binary" else from_structured
        assert_same_event(strict(message(record), JSONFormat()), event, content_mode)
        assert_same_event(decode(record), event, content_mode)


@pytest.mark.kafka
def test_send_delivers_one_event(
    backend: BaseKafkaBackend, kafka_bootstrap_servers: str, unique_name: str, content_mode: str
) -> None:
    event = published_event(extensions={"partitionkey": "k1"})

    backend.send(event)

    [record] = consume(kafka_bootstrap_servers, unique_name, 1)
    assert_same_event(decode(record), event, content_mode)


@pytest.mark.kafka
@pytest.mark.parametrize("content_mode", ["structured"], indirect=True)
def test_rule_structured_content_type_is_cloudevents_json_utf8(
    backend: BaseKafkaBackend, kafka_bootstrap_servers: str, unique_name: str
) -> None:
    """Binding 3.3.1; SDK 2.2.0 sends ``application/cloudevents+json`` without the charset."""
    event = published_event(extensions={"partitionkey": "k1"})
    backend.send(event)

    [record] = consume(kafka_bootstrap_servers, unique_name, 1)
    assert record.headers == [("content-type", STRUCTURED_CONTENT_TYPE)]
    body = json.loads(record.value)
    assert body["datacontenttype"] == "application/json"  # kept in the event, not the header
    assert body["partitionkey"] == "k1"
    assert record.key == b"k1"


@pytest.mark.kafka
@pytest.mark.parametrize("content_mode", ["binary"], indirect=True)
def test_rule_binary_keeps_partitionkey_header_and_maps_datacontenttype(
    backend: BaseKafkaBackend, kafka_bootstrap_servers: str, unique_name: str
) -> None:
    """Binding 3.1 and 3.2.1: the key mapper must not remove ``partitionkey`` from the event."""
    keyed, unkeyed = published_event(extensions={"partitionkey": "k1"}), published_event()
    backend.send_batch([keyed, unkeyed])

    records = by_id(consume(kafka_bootstrap_servers, unique_name, 2))
    headers = dict(records[keyed.id].headers)
    assert headers["ce_partitionkey"] == b"k1"
    assert records[keyed.id].key == b"k1"
    assert headers["content-type"] == b"application/json"
    assert "ce_datacontenttype" not in headers
    assert records[unkeyed.id].key is None
    assert "ce_partitionkey" not in dict(records[unkeyed.id].headers)
    for name, value in records[keyed.id].headers:
        assert isinstance(name, str) and isinstance(value, bytes)


@pytest.mark.kafka
@pytest.mark.parametrize("content_mode", ["binary"], indirect=True)
def test_rule_binary_value_is_json_text_for_every_json_value(
    backend: BaseKafkaBackend, kafka_bootstrap_servers: str, unique_name: str
) -> None:
    """SDK 2.2.0 writes non-dict data as Python text: ``[1, 'a']``, ``hello``, ``True``."""
    values: list[Any] = [{"a": 1}, [1, "a", None], "hello", 3, 2.5, True, False]
    events = [published_event(data=value) for value in values]
    backend.send_batch(events)

    records = by_id(consume(kafka_bootstrap_servers, unique_name, len(events)))
    for event in events:
        assert json.loads(records[event.id].value) == event.data


@pytest.mark.kafka
@pytest.mark.parametrize("content_mode", ["binary"], indirect=True)
def test_rule_binary_boolean_extension_is_canonical(
    backend: BaseKafkaBackend, kafka_bootstrap_servers: str, unique_name: str
) -> None:
    """CloudEvents' Boolean is ``true``/``false``; SDK 2.2.0 writes Python's ``True``."""
    event = published_event(extensions={"vip": True, "trial": False, "attempt": 3})
    backend.send(event)

    [record] = consume(kafka_bootstrap_servers, unique_name, 1)
    headers = dict(record.headers)
    assert (headers["ce_vip"], headers["ce_trial"], headers["ce_attempt"]) == (
        b"true",
        b"false",
        b"3",
    )


@pytest.mark.kafka
@pytest.mark.parametrize("content_mode", ["binary"], indirect=True)
def test_rule_binary_event_without_data_has_no_value(
    backend: BaseKafkaBackend, kafka_bootstrap_servers: str, unique_name: str
) -> None:
    """Binding 3.2.2: no data, no value (SDK 2.2.0 sends b"").

    kafka-python refuses a message with neither key nor value, so an unkeyed event gets b""
    (from both backends, so that consumers see the same messages).
    """
    keyed = published_event(data=None, extensions={"partitionkey": "k1"})
    unkeyed = published_event(data=None)
    backend.send_batch([keyed, unkeyed])

    records = by_id(consume(kafka_bootstrap_servers, unique_name, 2))
    assert records[keyed.id].value is None
    assert records[unkeyed.id].value == b""
    assert decode(records[keyed.id]).get_data() is None


def size_limit(backend_class: type[BaseKafkaBackend], limit: int) -> dict[str, int]:
    """Return the ``producer_options`` limiting a message to ``limit`` bytes."""
    if backend_class is ConfluentKafkaBackend:
        return {"message.max.bytes": limit}
    return {"max_request_size": limit}


def is_size_error(backend_class: type[BaseKafkaBackend], error: BaseException | None) -> bool:
    """Return whether ``error`` is the client's "message too large"."""
    if backend_class is ConfluentKafkaBackend:
        from confluent_kafka import KafkaError, KafkaException

        return isinstance(error, KafkaException) and (
            error.args[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
        )
    return isinstance(error, MessageSizeTooLargeError)


@pytest.mark.kafka
def test_oversize_message_is_rejected_alone(
    kafka_bootstrap_servers: str,
    unique_name: str,
    content_mode: str,
    backend_class: type[BaseKafkaBackend],
) -> None:
    small_before, big, small_after = (
        published_event(),
        published_event(data="x" * 20_000),
        published_event(),
    )
    with backend_class(
        "kafka",
        bootstrap_servers=kafka_bootstrap_servers,
        topic=unique_name,
        content_mode=content_mode,
        producer_options=size_limit(backend_class, 8192),
    ) as backend:
        rejected = backend.send_batch([small_before, big, small_after])
        with pytest.raises(EventRejected):
            backend.send(big)

    assert list(rejected) == [big.id]
    assert isinstance(rejected[big.id], EventRejected)
    assert rejected[big.id].destination == "kafka"
    assert is_size_error(backend_class, rejected[big.id].__cause__)
    records = by_id(consume(kafka_bootstrap_servers, unique_name, 2))
    assert set(records) == {small_before.id, small_after.id}


@pytest.mark.kafka
def test_kafka_python_sends_each_batch_of_keyless_events_to_one_partition_in_turn(
    kafka_bootstrap_servers: str, unique_name: str
) -> None:
    batches = [[published_event() for _ in range(20)] for _ in range(2)]
    keyed = published_event(extensions={"partitionkey": "customer-7"})

    with KafkaBackend(
        "kafka", bootstrap_servers=kafka_bootstrap_servers, topic=unique_name
    ) as backend:
        for batch in batches:
            assert backend.send_batch(batch) == {}
        assert backend.send_batch([keyed]) == {}
        partitions = len(backend._producer.partitions_for(unique_name))

    records = by_id(consume(kafka_bootstrap_servers, unique_name, 41))
    used = [{records[event.id].partition for event in batch} for batch in batches]
    assert [len(partitions_used) for partitions_used in used] == [1, 1]
    assert used[0] != used[1]
    expected = (murmur2(b"customer-7") & 0x7FFFFFFF) % partitions  # the Java client's choice
    assert records[keyed.id].partition == expected


@pytest.mark.kafka
def test_empty_batch_sends_nothing(backend: BaseKafkaBackend) -> None:
    assert backend.send_batch([]) == {}


def closed_port() -> int:
    """Return a loopback port that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
