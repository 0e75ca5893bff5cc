"""Consumers and a broker that is down: they wait, say so once, say once that it is back, go on.

Each test starts a Redis or Tansu of its own (see :mod:`tests.faults.services`), since it stops
it; the consumer runs in a thread of the test process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connections

from django_broadcaster.backends import KafkaBackend, RedisStreamBackend
from django_broadcaster.consumers.base import BaseConsumer, ConsumerStats
from django_broadcaster.consumers.kafka import KafkaTopicConsumer
from django_broadcaster.consumers.redis import RedisStreamConsumer
from django_broadcaster.events import CloudEvent
from django_broadcaster.registry import EventRegistry
from harness.polling import poll
from tests.factories import published_event
from tests.faults.services import RedisServer, TansuBroker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TYPE = "com.example.order.created"
DOWN, BACK = "Broker unavailable", "Broker reachable again"
KAFKA_OPTIONS = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}


class Running:
    """Run ``consumer`` on a thread; collect the events its handler gets."""

    def __init__(self, consumer: BaseConsumer, received: list[CloudEvent]) -> None:
        self.consumer, self.received = consumer, received
        self.stats: ConsumerStats | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.stats = self.consumer.run()
        except BaseException as exc:  # the test reports it
            self.error = exc
        finally:
            connections.close_all()  # this thread's: the test database is dropped afterwards

    def wait_for(self, events: list[CloudEvent], timeout: float = 60) -> None:
        ids = {event.id for event in events}
        poll(
            lambda: self.error is not None or ids <= {event.id for event in self.received},
            timeout,
            f"events {sorted(str(i) for i in ids)} handled",
        )
        assert self.error is None, repr(self.error)

    def stop(self) -> None:
        self.consumer.stop()
        self.thread.join(30)
        assert not self.thread.is_alive()
        assert self.error is None, repr(self.error)


def registry(received: list[CloudEvent]) -> EventRegistry:
    handlers = EventRegistry()
    handlers.register(TYPE)(received.append)
    return handlers


def said(caplog: pytest.LogCaptureFixture, start: str) -> int:
    """Return how many of the consumer's log records start with ``start``."""
    records = caplog.records
    return sum(r.getMessage().startswith(start) for r in records if r.name.endswith(".base"))


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO, logger="django_broadcaster.consumers")
    yield caplog


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.__exit__(None, None, None)


@pytest.fixture
def tansu() -> Iterator[TansuBroker]:
    broker = TansuBroker()
    yield broker
    broker.__exit__(None, None, None)


def redis_consumer(server: RedisServer, received: list[CloudEvent]) -> RedisStreamConsumer:
    import redis

    client = redis.Redis.from_url(server.url, socket_timeout=10, socket_connect_timeout=2)
    block = timedelta(seconds=0.2)
    return RedisStreamConsumer(
        client, "orders", "g", "c1", registry=registry(received), block=block
    )


def send_to_redis(server: RedisServer, events: list[CloudEvent]) -> None:
    with RedisStreamBackend("r", url=server.url, stream_name="orders") as backend:
        assert backend.send_batch(events) == {}


def send_to_kafka(broker: TansuBroker, events: list[CloudEvent]) -> None:
    backend = KafkaBackend("k", bootstrap_servers=broker.bootstrap_servers, topic="orders")
    with backend:
        assert backend.send_batch(events) == {}


@pytest.mark.redis
def test_redis_down_at_start_is_waited_for(redis_server: RedisServer, logs: Any) -> None:
    received: list[CloudEvent] = []
    running = Running(redis_consumer(redis_server, received), received)
    poll(lambda: running.error is not None or said(logs, DOWN), 30, "the outage logged")
    assert running.error is None, repr(running.error)

    redis_server.start()
    event = published_event()
    send_to_redis(redis_server, [event])
    running.wait_for([event])
    running.stop()

    assert (said(logs, DOWN), said(logs, BACK)) == (1, 1)


@pytest.mark.redis
def test_redis_going_down_and_back_is_logged_once_each(
    redis_server: RedisServer, logs: Any
) -> None:
    redis_server.start()
    received: list[CloudEvent] = []
    running = Running(redis_consumer(redis_server, received), received)
    first = published_event()
    send_to_redis(redis_server, [first])
    running.wait_for([first])

    redis_server.stop()
    poll(lambda: said(logs, DOWN), 30, "the outage logged")
    redis_server.start()  # the same port; the stream and the group survive (append-only file)
    second = published_event()
    send_to_redis(redis_server, [second])
    running.wait_for([second])
    running.stop()

    assert (said(logs, DOWN), said(logs, BACK)) == (1, 1)


@pytest.mark.kafka
def test_kafka_down_at_start_is_waited_for(tansu: TansuBroker, logs: Any) -> None:
    received: list[CloudEvent] = []
    consumer = KafkaTopicConsumer(
        tansu.bootstrap_servers, "orders", "g", registry=registry(received),
        consumer_options=KAFKA_OPTIONS,
    )  # fmt: skip
    running = Running(consumer, received)
    poll(lambda: running.error is not None or said(logs, DOWN), 30, "the outage logged")
    assert running.error is None, repr(running.error)

    tansu.start()
    event = published_event()
    send_to_kafka(tansu, [event])
    running.wait_for([event])
    running.stop()

    assert (said(logs, DOWN), said(logs, BACK)) == (1, 1)


@pytest.mark.kafka
def test_kafka_going_down_and_back_is_logged_once_each(tansu: TansuBroker, logs: Any) -> None:
    tansu.start()
    received: list[CloudEvent] = []
    first = published_event()
    send_to_kafka(tansu, [first])
    consumer = KafkaTopicConsumer(
        tansu.bootstrap_servers, "orders", "g", registry=registry(received),
        consumer_options=KAFKA_OPTIONS,
    )  # fmt: skip
    running = Running(consumer, received)
    running.wait_for([first])

    tansu.stop()
    poll(lambda: said(logs, DOWN), 60, "the outage logged")
    tansu.start()  # memory storage: the broker comes back empty
    second = published_event()
    send_to_kafka(tansu, [second])
    running.wait_for([second], timeout=90)
    running.stop()

    assert (said(logs, DOWN), said(logs, BACK)) == (1, 1)
