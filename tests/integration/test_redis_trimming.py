"""What RedisStreamBackend keeps in its stream: everything by default, and with ``retention`` or
``max_age`` only what no consumer group needs, against a real Redis.

Trims are approximate (Redis frees whole nodes of entries), so the tests check what must stay
and that entries went, not an exact length.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import redis

from django_broadcaster.backends import RedisStreamBackend
from django_broadcaster.backends.redis.trimming import EntryId, entry_id
from tests.factories import published_event
from tests.faults.services import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def protocol(request: pytest.FixtureRequest) -> int:
    """Return the RESP version the client speaks: both must work."""
    return int(request.param)


@contextmanager
def stream_backend(url: str, stream: str, protocol: int, **options: Any) -> Iterator[Any]:
    """Yield an open backend on ``stream`` whose client speaks ``protocol``."""
    client_options = {"protocol": protocol}
    with RedisStreamBackend(
        "redis", url=url, stream_name=stream, client_options=client_options, **options
    ) as backend:
        yield backend


def send(backend: RedisStreamBackend, count: int, batch: int = 100) -> None:
    for start in range(0, count, batch):
        assert (
            backend.send_batch([published_event() for _ in range(min(batch, count - start))]) == {}
        )


def entry_ids(client: Any, stream: str) -> list[EntryId]:
    return [entry_id(raw) for raw, _fields in client.xrange(stream)]


def read(client: Any, stream: str, group: str, count: int, *, ack: int | None = None) -> None:
    """Deliver ``count`` new entries to ``group`` and acknowledge the first ``ack`` (all)."""
    [(_stream, entries)] = client.xreadgroup(group, "c1", {stream: ">"}, count=count)
    delivered = [raw for raw, _fields in entries]
    acknowledged = delivered if ack is None else delivered[:ack]
    if acknowledged:
        client.xack(stream, group, *acknowledged)


def test_the_default_keeps_every_entry(
    redis_url: str, redis_client: Any, unique_name: str, protocol: int
) -> None:
    # 0.2.0's default, max_len=10000, left about 10,000 of these.
    with stream_backend(redis_url, unique_name, protocol) as backend:
        send(backend, 12_000, batch=1_000)

    assert redis_client.xlen(unique_name) == 12_000


def test_consumed_retention_keeps_what_a_group_has_not_read_or_acknowledged(
    redis_url: str, redis_client: Any, unique_name: str, protocol: int
) -> None:
    with stream_backend(redis_url, unique_name, protocol, retention="consumed") as backend:
        send(backend, 1_000)
        ids = entry_ids(redis_client, unique_name)
        for group in ("done", "slow"):
            redis_client.xgroup_create(unique_name, group, id="0")
        read(redis_client, unique_name, "done", 1_000)
        read(redis_client, unique_name, "slow", 600, ack=300)  # 300-599 delivered, not acked

        assert backend.trim() > 0
        kept = entry_ids(redis_client, unique_name)
        assert kept[0] <= ids[300] and set(ids[300:]) <= set(kept)

        pending = redis_client.xpending_range(unique_name, "slow", "-", "+", 1_000)
        redis_client.xack(unique_name, "slow", *(entry["message_id"] for entry in pending))
        assert backend.trim() > 0
        kept = entry_ids(redis_client, unique_name)
        assert kept[0] <= ids[599] and set(ids[599:]) <= set(kept)


def test_consumed_retention_keeps_everything_until_every_group_has_read(
    redis_url: str, redis_client: Any, unique_name: str, protocol: int
) -> None:
    with stream_backend(redis_url, unique_name, protocol, retention="consumed") as backend:
        send(backend, 500)
        assert backend.trim() == 0  # no consumer group at all

        redis_client.xgroup_create(unique_name, "done", id="0")
        redis_client.xgroup_create(unique_name, "new", id="0")
        read(redis_client, unique_name, "done", 500)
        assert backend.trim() == 0  # "new" has read nothing yet

    assert redis_client.xlen(unique_name) == 500


def test_max_age_trims_entries_older_than_it(
    redis_url: str, redis_client: Any, unique_name: str, protocol: int
) -> None:
    for sequence in range(1, 501):  # added in 1970, by their ids
        redis_client.xadd(unique_name, {"n": sequence}, id=f"1-{sequence}")

    with stream_backend(redis_url, unique_name, protocol, max_age=timedelta(hours=1)) as backend:
        send(backend, 300)  # the first batch trims

    kept = entry_ids(redis_client, unique_name)
    assert len(kept) <= 300 + 100  # at most one node of old entries stays
    assert sum(milliseconds > 1 for milliseconds, _sequence in kept) == 300


def test_send_batch_trims_at_its_first_batch_then_once_per_trim_interval(
    redis_url: str, redis_client: Any, unique_name: str, protocol: int
) -> None:
    redis_client.xgroup_create(unique_name, "done", id="0", mkstream=True)
    with stream_backend(redis_url, unique_name, protocol, retention="consumed") as backend:
        send(backend, 500)  # trims before anything is read: nothing goes; the next in 10 s
        read(redis_client, unique_name, "done", 500)
        send(backend, 100)
        assert redis_client.xlen(unique_name) == 600

    with stream_backend(redis_url, unique_name, protocol, retention="consumed") as backend:
        send(backend, 100)
    assert redis_client.xlen(unique_name) < 600


def test_a_failed_trim_is_logged_and_the_events_stay_in(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="django_broadcaster")
    with RedisServer() as server, redis.Redis.from_url(server.url) as client:
        client.execute_command("ACL", "SETUSER", "default", "-xinfo")
        with RedisStreamBackend("redis", url=server.url, retention="consumed") as backend:
            assert backend.send_batch([published_event(), published_event()]) == {}

        assert client.xlen("events") == 2
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "could not trim the stream 'events'" in record.getMessage()
    assert "no permissions" in record.getMessage()
