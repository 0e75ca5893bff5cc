"""The Redis backend's hand-packed RESP requests, and the round trip that sends them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from django_broadcaster.backends.redis import stream_fields
from django_broadcaster.backends.resp import round_trip, xadd_command
from tests.factories import published_event

FIELDS: list[dict[str, str | bytes]] = [
    {"event_id": "42", "source": "https://shop.example.com/orders"},
    {"subject": "Bestellung für Zoë: 3 × €9,50 ☕ 😀", "cloud_event": '{"a": "ü"}'.encode()},
    {"cloud_event": b"x" * 10_000, "empty": ""},  # larger than redis-py's 6,000-byte chunks
    stream_fields(published_event(subject="größe/😀", data={"note": "naïve ☃"})),
]


def packed_by_redis_py(
    stream: str, fields: Mapping[str, str | bytes], max_len: int | None
) -> bytes:
    """Return the bytes redis-py itself sends for ``Redis.xadd(stream, fields, maxlen=max_len)``."""
    client = redis.Redis()  # never connects: execute_command is replaced
    sent: list[tuple[Any, ...]] = []
    client.execute_command = lambda *args, **options: sent.append(args)  # type: ignore[method-assign]
    client.xadd(stream, dict(fields), maxlen=max_len)
    [args] = sent
    return b"".join(redis.Connection().pack_command(*args))


@pytest.mark.parametrize("max_len", [None, 1, 10_000])
@pytest.mark.parametrize("fields", FIELDS)
@pytest.mark.parametrize("stream", ["events", "événements-🛒"])
def test_xadd_command_packs_what_redis_py_packs(
    stream: str, fields: dict[str, str | bytes], max_len: int | None
) -> None:
    assert xadd_command(stream, fields, max_len) == packed_by_redis_py(stream, fields, max_len)


def test_xadd_command_trims_approximately_and_counts_bytes_not_characters() -> None:
    assert xadd_command("s", {"f": "é"}, 5) == (
        b"*8\r\n$4\r\nXADD\r\n$1\r\ns\r\n$6\r\nMAXLEN\r\n$1\r\n~\r\n$1\r\n5\r\n"
        b"$1\r\n*\r\n$1\r\nf\r\n$2\r\n\xc3\xa9\r\n"
    )


class FakeConnection:
    """A redis-py connection that fails as scripted and records what it is asked to do."""

    def __init__(self, *, send: list[Exception | None], replies: list[Any]) -> None:
        self.retry = Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))
        self.send_outcomes: Iterator[Exception | None] = iter(send)
        self.replies = iter(replies)
        self.log: list[str] = []

    def send_packed_command(self, command: list[bytes], check_health: bool = True) -> None:
        self.log.append(f"send {b''.join(command).decode()}")
        error = next(self.send_outcomes)
        if error is not None:
            raise error

    def read_response(self) -> Any:
        self.log.append("read")
        reply = next(self.replies)
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def disconnect(self) -> None:
        self.log.append("disconnect")


class FakePool:
    """A pool of the one connection, recording when it comes back."""

    def __init__(self, connection: FakeConnection) -> None:
        self.connection = connection

    def get_connection(self, *args: Any) -> FakeConnection:
        self.connection.log.append("get")
        return self.connection

    def release(self, connection: FakeConnection) -> None:
        connection.log.append("release")


def run(connection: FakeConnection, count: int = 2) -> list[Any]:
    return round_trip(FakePool(connection), b"req", count)  # type: ignore[arg-type]


def test_an_error_reply_takes_the_place_of_its_command_and_the_rest_are_read() -> None:
    wrong_type = redis.ResponseError("WRONGTYPE Operation against a key")
    connection = FakeConnection(send=[None], replies=[b"1-0", wrong_type, b"1-1"])

    assert run(connection, count=3) == [b"1-0", wrong_type, b"1-1"]
    assert connection.log == ["get", "send req", "read", "read", "read", "release"]


def test_a_stale_connection_is_reconnected_and_the_request_sent_once_more() -> None:
    closed = redis.ConnectionError("Connection closed by server.")
    connection = FakeConnection(send=[closed, None], replies=[b"1-0", b"1-1"])

    assert run(connection) == [b"1-0", b"1-1"]
    assert connection.log == [
        *("get", "send req", "disconnect"),
        *("send req", "read", "read", "release"),
    ]


def test_a_second_connection_error_is_raised_after_one_retry() -> None:
    closed = redis.ConnectionError("Connection refused.")
    connection = FakeConnection(send=[closed, closed], replies=[])

    with pytest.raises(redis.ConnectionError):
        run(connection)
    assert connection.log.count("send req") == 2
    assert connection.log[-2:] == ["disconnect", "release"]


def test_a_timeout_is_not_retried_and_the_connection_is_disconnected_before_release() -> None:
    # The request may have been applied: sending it again could add every entry twice.
    connection = FakeConnection(send=[None], replies=[b"1-0", redis.TimeoutError("Timeout")])

    with pytest.raises(redis.TimeoutError):
        run(connection)
    assert connection.log == ["get", "send req", "read", "read", "disconnect", "release"]


def test_an_interrupted_read_leaves_no_unread_reply_on_a_pooled_connection() -> None:
    connection = FakeConnection(send=[None], replies=[KeyboardInterrupt()])

    with pytest.raises(KeyboardInterrupt):
        run(connection)
    assert connection.log[-2:] == ["disconnect", "release"]
