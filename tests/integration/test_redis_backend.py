"""RedisStreamBackend against a real Redis: every entry read back and decoded by the SDK."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from cloudevents.core.formats.json import JSONFormat

from django_broadcaster.backends import RedisStreamBackend
from django_broadcaster.events import CloudEvent
from django_broadcaster.exceptions import BackendUnavailable, EventRejected
from tests.factories import published_event

SECRET = "hunter2-s3cret"


EVENTS = [
    {},
    {"subject": "order/42"},
    {"extensions": {"partitionkey": "customer-7", "tenant": "acme", "attempt": 3, "vip": True}},
    {"data": ["a", 1, None]},
    {"data": "plain string"},
    {"data": None, "subject": "no-data"},
]


@pytest.fixture
def backend(redis_url: str, unique_name: str, redis_client: Any) -> Iterator[RedisStreamBackend]:
    """Yield an open backend writing to the stream ``unique_name`` (deleted afterwards)."""
    with RedisStreamBackend("redis", url=redis_url, stream_name=unique_name) as opened:
        assert isinstance(opened, RedisStreamBackend)
        yield opened


def read_stream(client: Any, stream: str) -> list[dict[bytes, bytes]]:
    return [fields for _entry_id, fields in client.xrange(stream)]


def assert_same_event(fields: dict[bytes, bytes], event: CloudEvent) -> None:
    """Decode the entry's ``cloud_event`` with the SDK and compare it with ``event``."""
    decoded = JSONFormat().read(None, fields[b"cloud_event"])
    assert decoded.get_id() == event.id
    assert decoded.get_type() == event.event_type
    assert decoded.get_source() == event.source
    assert decoded.get_time() == event.time
    assert decoded.get_subject() == event.subject
    assert decoded.get_datacontenttype() == "application/json"
    assert decoded.get_data() == event.data
    for name, value in event.extensions.items():
        assert decoded.get_extension(name) == value
    assert fields[b"event_id"].decode() == event.id
    assert fields[b"event_type"].decode() == event.event_type
    assert fields[b"source"].decode() == event.source
    assert event.time is not None
    assert fields[b"timestamp"].decode() == event.time.isoformat()


@pytest.mark.redis
def test_send_batch_writes_one_decodable_entry_per_event(
    backend: RedisStreamBackend, redis_client: Any, unique_name: str
) -> None:
    events = [published_event(**overrides) for overrides in EVENTS]

    assert backend.send_batch(events) == {}

    entries = read_stream(redis_client, unique_name)
    assert len(entries) == len(events)
    for fields, event in zip(entries, events, strict=True):
        assert_same_event(fields, event)


@pytest.mark.redis
def test_send_appends_one_entry(
    backend: RedisStreamBackend, redis_client: Any, unique_name: str
) -> None:
    event = published_event(extensions={"partitionkey": "k1"})

    backend.send(event)

    [fields] = read_stream(redis_client, unique_name)
    assert_same_event(fields, event)


@pytest.mark.redis
def test_event_without_time_has_no_timestamp_field(
    backend: RedisStreamBackend, redis_client: Any, unique_name: str
) -> None:
    backend.send(published_event(time=None))

    [fields] = read_stream(redis_client, unique_name)
    assert b"timestamp" not in fields


@pytest.mark.redis
def test_max_len_trims_the_stream_approximately(
    redis_url: str, redis_client: Any, unique_name: str
) -> None:
    events = [published_event(data={"n": n}) for n in range(1000)]
    with RedisStreamBackend("redis", url=redis_url, stream_name=unique_name, max_len=100) as b:
        for start in range(0, len(events), 100):
            b.send_batch(events[start : start + 100])

    assert 100 <= redis_client.xlen(unique_name) < 1000


@pytest.mark.redis
def test_max_len_none_keeps_every_entry(
    redis_url: str, redis_client: Any, unique_name: str
) -> None:
    with RedisStreamBackend("redis", url=redis_url, stream_name=unique_name, max_len=None) as b:
        b.send_batch([published_event() for _ in range(300)])

    assert redis_client.xlen(unique_name) == 300


@pytest.mark.redis
def test_host_and_port_options_connect_like_a_url(
    redis_url: str, redis_client: Any, unique_name: str
) -> None:
    kwargs = redis_client.connection_pool.connection_kwargs
    with RedisStreamBackend(
        "redis", host=kwargs["host"], port=kwargs["port"], db=kwargs["db"], stream_name=unique_name
    ) as b:
        b.send(published_event())

    assert redis_client.xlen(unique_name) == 1


@pytest.mark.redis
def test_command_errors_reject_each_event_with_the_cause_chained(
    backend: RedisStreamBackend, redis_client: Any, unique_name: str
) -> None:
    # A key of another type makes every XADD fail with WRONGTYPE: a per-command error.
    redis_client.set(unique_name, "not a stream")
    events = [published_event(), published_event()]

    rejected = backend.send_batch(events)

    assert set(rejected) == {event.id for event in events}
    for error in rejected.values():
        assert isinstance(error, EventRejected)
        assert error.destination == "redis"
        assert isinstance(error.__cause__, redis.ResponseError)
        assert "WRONGTYPE" in str(error)
    with pytest.raises(EventRejected):
        backend.send(published_event())


@pytest.mark.redis
def test_empty_batch_sends_nothing(backend: RedisStreamBackend) -> None:
    assert backend.send_batch([]) == {}


def closed_port() -> int:
    """Return a loopback port that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("by_url", [True, False], ids=["url", "host"])
def test_unreachable_server_raises_backend_unavailable_quickly(by_url: bool) -> None:
    port = closed_port()
    location: dict[str, Any] = (
        {"url": f"redis://app:{SECRET}@127.0.0.1:{port}/0"}
        if by_url
        else {"host": "127.0.0.1", "port": port, "password": SECRET}
    )
    backend = RedisStreamBackend("redis", connect_timeout=0.5, socket_timeout=0.5, **location)
    started = time.monotonic()

    with backend, pytest.raises(BackendUnavailable) as info:
        backend.send_batch([published_event()])

    assert time.monotonic() - started < 3
    assert info.value.destination == "redis"
    assert isinstance(info.value.__cause__, redis.ConnectionError)
    assert f"127.0.0.1:{port}" in str(info.value)
    assert SECRET not in str(info.value)
    assert SECRET not in repr(backend)
    with pytest.raises(BackendUnavailable):
        backend.send(published_event())
