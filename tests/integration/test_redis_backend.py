"""RedisStreamBackend against a real Redis: every entry read back and decoded by the SDK.

Tests that restart, freeze or reconfigure Redis start a server of their own (``own_redis``).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from cloudevents.core.formats.json import JSONFormat

from django_broadcaster.backends import RedisStreamBackend
from django_broadcaster.backends import redis as redis_module
from django_broadcaster.backends.resp import xadd_command
from django_broadcaster.events import CloudEvent
from django_broadcaster.exceptions import BackendUnavailable, EventRejected
from tests.factories import published_event
from tests.faults.services import RedisServer

SECRET = "hunter2-s3cret"


EVENTS = [
    {},
    {"subject": "order/42"},
    {"extensions": {"partitionkey": "customer-7", "tenant": "acme", "attempt": 3, "vip": True}},
    {"data": ["a", 1, None]},
    {"data": "plain string"},
    {"data": None, "subject": "no-data"},
]


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def protocol(request: pytest.FixtureRequest) -> int:
    """Return the RESP version the client speaks: both must work."""
    return int(request.param)


@pytest.fixture
def backend(
    redis_url: str, unique_name: str, redis_client: Any, protocol: int
) -> Iterator[RedisStreamBackend]:
    """Yield an open backend writing to the stream ``unique_name`` (deleted afterwards)."""
    options = {"protocol": protocol, "client_name": unique_name}
    with RedisStreamBackend(
        "redis", url=redis_url, stream_name=unique_name, client_options=options
    ) as opened:
        assert isinstance(opened, RedisStreamBackend)
        yield opened


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """Yield a Redis server of this test only, which it may restart, freeze or reconfigure."""
    server = RedisServer()
    with server:
        yield server


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
def test_one_refused_command_rejects_only_its_event(
    backend: RedisStreamBackend,
    redis_client: Any,
    unique_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every XADD of a batch goes to one stream; to refuse only the middle one, its XADD is
    # aimed at a key of another type.
    events = [published_event() for _ in range(5)]
    refused, wrong_key = events[2], f"{unique_name}-string"
    redis_client.set(wrong_key, "not a stream")

    def aim_the_refused_one_elsewhere(
        stream: str, fields: dict[str, Any], max_len: int | None
    ) -> bytes:
        target = wrong_key if fields["event_id"] == refused.id else stream
        return xadd_command(target, fields, max_len)

    monkeypatch.setattr(redis_module, "xadd_command", aim_the_refused_one_elsewhere)

    rejected = backend.send_batch(events)

    assert list(rejected) == [refused.id]
    assert isinstance(rejected[refused.id].__cause__, redis.ResponseError)
    assert "WRONGTYPE" in str(rejected[refused.id])
    entries = read_stream(redis_client, unique_name)
    assert [fields[b"event_id"].decode() for fields in entries] == [
        event.id for event in events if event is not refused
    ]
    monkeypatch.undo()
    assert backend.send_batch([published_event()]) == {}  # the connection read every reply
    assert redis_client.xlen(unique_name) == 5


@pytest.mark.redis
def test_a_pooled_connection_the_server_closed_is_replaced(
    backend: RedisStreamBackend, redis_client: Any, unique_name: str
) -> None:
    backend.send(published_event())
    # Only the backend's own connection (named after the test): the server is shared.
    [pooled] = [info for info in redis_client.client_list() if info["name"] == unique_name]
    redis_client.client_kill_filter(_id=pooled["id"])

    assert backend.send_batch([published_event(), published_event()]) == {}

    assert redis_client.xlen(unique_name) == 3


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


def own_backend(server: RedisServer, protocol: int, **options: Any) -> RedisStreamBackend:
    """Return a backend on ``server`` that writes to the stream ``events``."""
    return RedisStreamBackend(
        "redis", url=server.url, client_options={"protocol": protocol}, **options
    )


@pytest.mark.redis
def test_a_restarted_server_is_reached_again_without_an_outage(
    own_redis: RedisServer, protocol: int
) -> None:
    with own_backend(own_redis, protocol) as backend:
        backend.send(published_event())
        own_redis.stop()
        own_redis.start()

        assert backend.send_batch([published_event(), published_event()]) == {}

    with redis.Redis.from_url(own_redis.url) as client:
        assert client.xlen("events") == 3


@pytest.mark.redis
@pytest.mark.parametrize(
    ("command", "cause"),
    [
        (("REPLICAOF", "127.0.0.1", "1"), redis.exceptions.ReadOnlyError),
        (("CONFIG", "SET", "maxmemory", "1"), redis.exceptions.OutOfMemoryError),
    ],
    ids=["read-only-replica", "out-of-memory"],
)
def test_a_server_that_takes_no_writes_is_unavailable(
    own_redis: RedisServer, protocol: int, command: tuple[str, ...], cause: type[Exception]
) -> None:
    with redis.Redis.from_url(own_redis.url) as client:
        client.execute_command(*command)

    with own_backend(own_redis, protocol) as backend, pytest.raises(BackendUnavailable) as info:
        backend.send_batch([published_event(), published_event()])

    assert isinstance(info.value.__cause__, cause)


@pytest.mark.redis
def test_a_frozen_server_times_out_once_and_is_used_again_when_it_answers(
    own_redis: RedisServer, protocol: int
) -> None:
    with own_backend(own_redis, protocol, socket_timeout=0.5) as backend:
        backend.send(published_event())  # the pooled connection is open before the freeze
        own_redis.pause()
        started = time.monotonic()
        with pytest.raises(BackendUnavailable) as info:
            backend.send_batch([published_event(), published_event()])
        # Not retried: the writes may have been applied, and a second timeout would double the wait.
        assert time.monotonic() - started < 0.9
        assert isinstance(info.value.__cause__, redis.TimeoutError)
        own_redis.resume()

        last = published_event()
        assert backend.send_batch([last]) == {}

    with redis.Redis.from_url(own_redis.url) as client:
        [(_entry_id, fields)] = client.xrevrange("events", count=1)
    assert fields[b"event_id"].decode() == last.id
